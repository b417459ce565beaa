"""What users get wrong with the development tasks, on a real engine: each
case ends with a message that names the value and the fix, and nothing
half-done is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import copy_fixture_app, free_port, generate

INV = str(Path(sys.executable).parent / "inv")
PROJECT = "lhdtest_bad"


def inv(root: Path, *args: str, env: dict | None = None, timeout: float = 600):
    return subprocess.run(
        [INV, *args],
        cwd=root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def containers(client, project: str) -> list:
    return client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"}
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory, test_images, docker_engine):
    root = copy_fixture_app(tmp_path_factory.mktemp("bad") / "fixture_app")
    generate(root, project_name=PROJECT)
    from lhd import devenv, envfile, settings

    devenv.sync(settings.load(root))
    envfile.update(
        root / ".env",
        {
            "POSTGRES_IMAGE": test_images["postgres"],
            "HASURA_IMAGE": test_images["hasura"],
            "CRYSTAL_IMAGE": test_images["crystal"],
            "LUCKY_PORT": str(free_port()),
            "HASURA_PORT": str(free_port()),
            "HASURA_CONSOLE_PORT": str(free_port()),
            "HASURA_CONSOLE_API_PORT": str(free_port()),
        },
    )
    yield root
    inv(root, "down", "--volumes")
    for container in containers(docker_engine, f"{PROJECT}_test"):
        container.remove(force=True, v=True)


def interrupt_when(
    root: Path,
    args: list[str],
    marker: str,
    signal_number: int = signal.SIGINT,
    whole_group: bool = True,
    timeout: float = 300,
):
    """Start `inv ARGS` and signal it once `marker` is printed.

    By default Ctrl-C goes to the whole process group, as a terminal sends
    it; `whole_group=False` signals `inv` alone, as a CI runner does.
    """
    process = subprocess.Popen(
        [INV, *args], cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    output = []
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        output.append(line)
        if marker in line:
            time.sleep(0.5)
            if whole_group:
                os.killpg(process.pid, signal_number)
            else:
                process.send_signal(signal_number)
            break
        assert time.monotonic() < deadline, "".join(output)
    rest, _ = process.communicate(timeout=timeout)
    return process.returncode, "".join(output) + rest


def test_interrupted_up_resumes(project, docker_engine):
    code, output = interrupt_when(
        project, ["up", "--detach"], "Preparing the development database"
    )
    assert code == 130, output
    assert "Interrupted. Containers that were started keep running" in output
    result = inv(project, "up", "--detach")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The development stack is up" in result.stdout


def test_interrupted_test_removes_test_stack(project, docker_engine):
    code, output = interrupt_when(
        project, ["test", "--", "spec/version_spec.cr"], "Migrating the test database"
    )
    assert code != 0, output
    assert f"Removing the test stack {PROJECT}_test" in output
    assert "Interrupted; the test stack was removed." in output
    assert containers(docker_engine, f"{PROJECT}_test") == []
    assert not docker_engine.networks.list(
        filters={"label": f"com.docker.compose.project={PROJECT}_test"}
    )


def test_terminated_test_removes_test_stack(project, docker_engine):
    """SIGTERM to inv alone, as a CI runner cancelling a job sends it."""
    code, text = interrupt_when(
        project,
        ["test", "--", "spec/version_spec.cr"],
        "Running crystal spec",
        signal_number=signal.SIGTERM,
        whole_group=False,
    )
    assert code == 128 + signal.SIGTERM, text
    assert "Interrupted; the test stack was removed." in text
    assert containers(docker_engine, f"{PROJECT}_test") == []


def test_hasura_that_cannot_start_is_named(project):
    version_file = project / "db" / "hasura" / "metadata" / "version.yaml"
    saved = version_file.read_text()
    version_file.unlink()
    inv(project, "down")
    try:
        result = inv(project, "up", "--detach", "--wait", "60")
    finally:
        version_file.write_text(saved)
    assert result.returncode == 1
    message = result.stderr
    assert "failed: the hasura container exited with code 1" in message
    assert "Last 30 log lines of hasura" in message
    assert "version.yaml" in message


def test_missing_image_not_pulled(project):
    result = inv(project, "test", "--image", "lhdtest/none:missing")
    assert result.returncode == 1
    assert "Image lhdtest/none:missing not found on this machine" in result.stderr
    assert "inv build" in result.stderr


def test_build_without_commit(project, tmp_path):
    # An empty repository stands for a project that was never committed.
    subprocess.run(["git", "init", "--quiet", str(tmp_path / "empty")], check=True)
    result = inv(project, "build", env={"GIT_DIR": str(tmp_path / "empty" / ".git")})
    assert result.returncode == 1
    assert "has no git commit yet" in result.stderr
    assert "Commit first, or pass --tag" in result.stderr


def test_run_without_command(project):
    result = inv(project, "run")
    assert result.returncode == 1
    assert "No command given: put it after `--`" in result.stderr


def test_malformed_env_line(project):
    env_file = project / ".env"
    saved = env_file.read_text()
    env_file.write_text(saved + "THIS IS NOT A SETTING\n")
    try:
        result = inv(project, "status")
    finally:
        env_file.write_text(saved)
    assert result.returncode == 1
    assert ".env has lines that are not `NAME=value`" in result.stderr
    assert "THIS IS NOT A SETTING" in result.stderr


def test_no_engine_names_docker_host(project):
    result = inv(project, "up", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.returncode == 1
    assert (
        "No running Docker engine at unix:///nonexistent/docker.sock" in result.stderr
    )
    assert "Start Docker" in result.stderr


def test_settings_file_missing(project, tmp_path):
    # tasks.py and lhd/ without lhd.toml, as after a bad merge.
    (tmp_path / "lhd").symlink_to(project / "lhd")
    (tmp_path / "tasks.py").write_text((project / "tasks.py").read_text())
    result = inv(tmp_path, "status")
    assert result.returncode == 1
    assert "No LHD project found" in result.stderr
    assert "copier copy" in result.stderr


def test_outside_any_project(tmp_path):
    result = inv(tmp_path, "up")
    assert result.returncode == 1
    assert "Can't find any collection named 'tasks'" in result.stderr
