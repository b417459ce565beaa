"""The Docker engine and the Compose command this machine provides."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess

from lhd.errors import LhdError

# `!reset` in override files needs Compose 2.24.
MIN_COMPOSE = (2, 24, 0)
INSTALL_COMPOSE = (
    "Install Docker Compose v2: it comes with Docker Desktop, as the Debian "
    "and Ubuntu package docker-compose-plugin, or as the standalone "
    "docker-compose binary of a v2 release."
)


@functools.cache
def client():
    """Return a Docker SDK client for a running engine, or raise LhdError."""
    import docker
    from docker.errors import DockerException

    try:
        engine = docker.from_env()
        engine.ping()
    except DockerException as error:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise LhdError(
            f"No running Docker engine at {host} ({error}). Start Docker "
            "(Docker Desktop, or `sudo systemctl start docker` on Linux) "
            "and try again."
        ) from error
    return engine


def parse_version(text: str) -> tuple[int, ...] | None:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(part) for part in match.groups()) if match else None


def probe(command: list[str]) -> tuple[int, ...] | None:
    """Return the version `command version --short` prints, or None."""
    if shutil.which(command[0]) is None:
        return None
    try:
        result = subprocess.run(
            [*command, "version", "--short"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return parse_version(result.stdout)


@functools.cache
def compose_command() -> tuple[str, ...]:
    """Return the Compose v2 command: `docker compose`, else `docker-compose`."""
    found: list[str] = []
    for command in (["docker", "compose"], ["docker-compose"]):
        version = probe(command)
        if version is None:
            continue
        if version >= MIN_COMPOSE:
            return tuple(command)
        found.append(f"`{' '.join(command)}` {'.'.join(map(str, version))}")
    wanted = ".".join(map(str, MIN_COMPOSE))
    if found:
        raise LhdError(
            f"Docker Compose is too old: found {', '.join(found)}, need "
            f"{wanted} or newer. {INSTALL_COMPOSE}"
        )
    raise LhdError(f"Docker Compose not found. {INSTALL_COMPOSE}")
