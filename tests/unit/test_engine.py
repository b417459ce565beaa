"""Compose detection, with small executables on PATH in place of Docker's."""

import stat

import pytest

from lhd import engine
from lhd.errors import LhdError


def fake_command(folder, name, version_output, exit_code=0):
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{version_output}'\nexit {exit_code}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def path_only(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    engine.compose_command.cache_clear()
    yield tmp_path
    engine.compose_command.cache_clear()


def test_prefers_docker_compose_plugin(path_only):
    fake_command(path_only, "docker", "2.40.3")
    fake_command(path_only, "docker-compose", "2.30.0")
    assert engine.compose_command() == ("docker", "compose")


def test_falls_back_to_standalone(path_only):
    fake_command(path_only, "docker", "unknown command", exit_code=1)
    fake_command(path_only, "docker-compose", "v2.29.7")
    assert engine.compose_command() == ("docker-compose",)


def test_rejects_compose_v1(path_only):
    fake_command(path_only, "docker-compose", "1.29.2")
    with pytest.raises(
        LhdError, match=r"too old: found `docker-compose` 1\.29\.2, need 2\.24\.0"
    ):
        engine.compose_command()


def test_names_install_when_missing(path_only):
    with pytest.raises(
        LhdError, match="Docker Compose not found. Install Docker Compose v2"
    ):
        engine.compose_command()


def test_no_engine_names_host(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    engine.client.cache_clear()
    try:
        with pytest.raises(
            LhdError, match="No running Docker engine at unix:///nonexistent"
        ):
            engine.client()
    finally:
        engine.client.cache_clear()


def test_parse_version():
    assert engine.parse_version("Docker Compose version v2.40.3") == (2, 40, 3)
    assert engine.parse_version("garbage") is None
