"""`inv check` in a generated project, clean and with boilerplate leftovers."""

import subprocess
import sys
from pathlib import Path

from conftest import copy_fixture_app, generate

INV = str(Path(sys.executable).parent / "inv")


def test_check_passes_on_fresh_project(tmp_path):
    root = generate(copy_fixture_app(tmp_path / "fixture_app"))
    result = subprocess.run([INV, "check"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed" not in result.stdout
    assert "none left" in result.stdout


def test_check_lists_boilerplate_leftovers(tmp_path):
    root = generate(copy_fixture_app(tmp_path / "fixture_app"))
    (root / "script").mkdir()
    (root / "script" / "up").write_text("#!/bin/bash\n")
    (root / "up.yml").write_text("rebuild: []\n")
    (root / "Docker" / "docker-compose.swarm.yml").write_text("services: {}\n")
    (root / "config" / "deploy.cr").write_text(
        'REPO = "GITLAB_USER/GITLAB_REPO_NAME"\n'
    )
    result = subprocess.run([INV, "check"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 1
    output = " ".join(result.stdout.split())
    assert "script/up" in output
    assert "up.yml" in output
    assert "Docker/docker-compose.swarm.yml" in output
    assert "GITLAB_USER" in output


def test_check_lists_update_conflicts(tmp_path):
    root = generate(copy_fixture_app(tmp_path / "fixture_app"))
    swarm = root / "Docker" / "compose.swarm.yml"
    swarm.write_text(
        "<<<<<<< before updating\nold\n=======\nnew\n>>>>>>> after updating\n"
        + swarm.read_text()
    )
    (root / "Docker" / "lucky" / "Dockerfile.prod.rej").write_text("@@ -1 +1 @@\n")
    result = subprocess.run([INV, "check"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 1
    output = " ".join(result.stdout.split())
    assert "Docker/compose.swarm.yml" in output
    assert "Docker/lucky/Dockerfile.prod.rej" in output
