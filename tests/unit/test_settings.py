import pytest

from lhd import settings
from lhd.errors import LhdError


def test_load_from_subfolder(tmp_path):
    (tmp_path / "lhd.toml").write_text(
        '[project]\nname = "demo"\nregistry_image = "r.invalid/d/lucky"\n'
        'stack_name = "demo_stack"\napp_domain = "demo.localhost"\n'
    )
    (tmp_path / "spec" / "deep").mkdir(parents=True)
    loaded = settings.load(tmp_path / "spec" / "deep")
    assert loaded.root == tmp_path.resolve()
    assert loaded.project_name == "demo"
    assert loaded.stack_name == "demo_stack"
    assert loaded.dev_image == "demo_lucky:dev"
    assert loaded.test_project == "demo_test"
    assert loaded.env_file == tmp_path.resolve() / ".env"


def test_load_outside_project_names_copier(tmp_path):
    with pytest.raises(LhdError, match="No LHD project found.*copier copy"):
        settings.load(tmp_path)


def test_load_missing_name(tmp_path):
    (tmp_path / "lhd.toml").write_text("[project]\n")
    with pytest.raises(LhdError, match="project.name"):
        settings.load(tmp_path)


def test_load_invalid_toml(tmp_path):
    (tmp_path / "lhd.toml").write_text("[project\n")
    with pytest.raises(LhdError, match="Cannot read"):
        settings.load(tmp_path)
