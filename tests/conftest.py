"""Shared fixtures: the template's task library on sys.path, the Docker
engine (required unless the run opts out), the test images and project
generation with Copier."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "template"
FIXTURE_APP = REPO / "tests" / "fixtures" / "lucky_app"
SKIP_DOCKER_VARIABLE = "LHD_SKIP_DOCKER"

# The task library is plain Python, tested in place without rendering.
sys.path.insert(0, str(TEMPLATE))
sys.path.insert(0, str(REPO / "tests"))


def pytest_addoption(parser):
    parser.addoption(
        "--no-docker",
        action="store_true",
        help="Skip the tests that need a Docker engine "
        f"(or set {SKIP_DOCKER_VARIABLE}=1). "
        "Without it they fail when no engine runs.",
    )


def docker_opted_out(config) -> bool:
    return (
        config.getoption("--no-docker") or os.environ.get(SKIP_DOCKER_VARIABLE) == "1"
    )


@pytest.fixture(scope="session")
def docker_engine(request):
    """A running Docker engine; fails the test when there is none."""
    if docker_opted_out(request.config):
        pytest.skip(
            f"Docker tests skipped on request (--no-docker or {SKIP_DOCKER_VARIABLE}=1)"
        )
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env()
        client.ping()
    except DockerException as error:
        pytest.fail(
            f"No Docker engine answers ({error}). Start one "
            "(`bash .ci/install-engine`) or opt out of the Docker tests with "
            f"--no-docker or {SKIP_DOCKER_VARIABLE}=1.",
            pytrace=False,
        )
    return client


@pytest.fixture(scope="session")
def test_images(docker_engine) -> dict[str, str]:
    """Tags of the local test images, built on first use."""
    from images.build import build_all

    return build_all()


@pytest.fixture(scope="session")
def compose_command() -> list[str]:
    """The Compose v2 command; `docker compose config` needs no engine."""
    from lhd import engine

    return list(engine.compose_command())


@pytest.fixture(scope="module")
def ssh_server(docker_engine):
    """A throwaway sshd on loopback for the test module (see sshserver.py)."""
    import sshserver

    server, process = sshserver.start()
    yield server
    sshserver.stop(process, server.folder)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def generate(destination: Path, **answers) -> Path:
    """Run `copier copy` of the working tree into `destination`."""
    import copier

    data = {"project_name": "fixture_app", **answers}
    copier.run_copy(
        str(REPO),
        str(destination),
        data=data,
        defaults=True,
        overwrite=True,
        unsafe=True,
        vcs_ref="HEAD",
        quiet=True,
    )
    return destination


def copy_fixture_app(destination: Path) -> Path:
    """Copy the Lucky-shaped fixture project to `destination` as a git repository."""
    shutil.copytree(FIXTURE_APP, destination)
    git(destination, "init", "--quiet", "--initial-branch", "main")
    git(destination, "add", "--all")
    git(destination, "commit", "--quiet", "--message", "Lucky project")
    return destination


def git(folder: Path, *args: str) -> str:
    identity = ["-c", "user.name=LHD tests", "-c", "user.email=tests@lhd.invalid"]
    result = subprocess.run(
        ["git", *identity, *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout
