"""`copier copy` into a Lucky project on a case-insensitive file system,
where Lucky's `docker/` and the template's `Docker/` are one folder."""

from __future__ import annotations

import json
import os
import subprocess

from casefold import case_insensitive_mount
from conftest import copy_fixture_app, generate


def test_copy_on_case_insensitive_file_system(tmp_path, compose_command):
    backing = tmp_path / "backing"
    backing.mkdir()
    mountpoint = tmp_path / "mount"
    mountpoint.mkdir()
    with case_insensitive_mount(backing, mountpoint) as mounted:
        root = copy_fixture_app(mounted / "fixture_app")
        generate(root)

        docker_folders = [
            name for name in os.listdir(root) if name.casefold() == "docker"
        ]
        # The folder keeps the case Lucky created it with; ours went inside it.
        assert docker_folders == ["docker"]
        listing = set(os.listdir(root / "docker"))
        expected = {"compose.yml", "compose.dev.yml", "compose.test.yml", "lucky"}
        assert expected <= listing, listing
        for name in ("development.dockerfile", "dev_entrypoint.sh", "wait-for-it.sh"):
            assert not (root / "Docker" / name).exists(), name
        assert not (root / "docker-compose.yml").exists()
        assert (root / "Docker" / "lucky" / "Dockerfile").is_file()

        from lhd import devenv, settings

        devenv.sync(settings.load(root))
        result = subprocess.run(
            [*compose_command, "--env-file", str(root / ".env"), "--project-name", "ci"]
            + ["--file", str(root / "Docker" / "compose.yml")]
            + ["--file", str(root / "Docker" / "compose.dev.yml")]
            + ["config", "--format", "json"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        lucky = json.loads(result.stdout)["services"]["lucky"]
        assert lucky["build"]["dockerfile"] == "Docker/lucky/Dockerfile"
    assert (backing / "fixture_app" / "docker" / "compose.yml").is_file()
