from pathlib import Path

from lhd import images
from lhd.settings import Settings


def settings_at(root: Path) -> Settings:
    return Settings(root, "demo", "r.invalid/demo/lucky", "demo", "demo.localhost")


def test_digest_changes_with_each_input(tmp_path):
    settings = settings_at(tmp_path)
    (tmp_path / "Docker" / "lucky").mkdir(parents=True)
    seen = {images.inputs_digest(settings, {})}
    for name in images.DEV_INPUTS:
        (tmp_path / name).write_text(f"{name} v1\n")
        seen.add(images.inputs_digest(settings, {}))
    seen.add(images.inputs_digest(settings, {"CRYSTAL_IMAGE": "crystal:2"}))
    assert len(seen) == len(images.DEV_INPUTS) + 2


def test_digest_ignores_source_files(tmp_path):
    settings = settings_at(tmp_path)
    before = images.inputs_digest(settings, {})
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.cr").write_text("puts 1\n")
    assert images.inputs_digest(settings, {}) == before


def test_image_reference_expands_bare_tag(tmp_path):
    settings = settings_at(tmp_path)
    assert (
        images.image_reference(settings, "abcd1234") == "r.invalid/demo/lucky:abcd1234"
    )
    assert images.image_reference(settings, "other/image:1") == "other/image:1"


def test_build_production_argv(tmp_path):
    settings = settings_at(tmp_path)
    argv = images.build_production_argv(
        settings, "abcd1234", {"CRYSTAL_IMAGE": "c:1"}, "r.invalid/demo/lucky:main"
    )
    assert argv == [
        "docker", "build",
        "--file", str(tmp_path / "Docker" / "lucky" / "Dockerfile.prod"),
        "--tag", "r.invalid/demo/lucky:abcd1234", "--build-arg", "CRYSTAL_IMAGE=c:1",
        "--cache-from", "r.invalid/demo/lucky:main",
        "--build-arg", "BUILDKIT_INLINE_CACHE=1", str(tmp_path),
    ]  # fmt: skip
