"""Check the host ports of a stack before Compose tries to publish them, so
a taken port gets a message that names the setting to change."""

from __future__ import annotations

import socket

from lhd import engine
from lhd.errors import LhdError

DEV_PORTS = {
    "LUCKY_PORT": 5000,
    "HASURA_PORT": 8080,
    "HASURA_CONSOLE_PORT": 9695,
    "HASURA_CONSOLE_API_PORT": 9693,
}
TEST_PORTS = {"LUCKY_TEST_PORT": None, "HASURA_TEST_PORT": None}


def port_number(name: str, value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise LhdError(
            f"{name}={value!r} in .env is not a port number: use 1 to 65535."
        )
    return port


def published_by(project: str) -> set[int]:
    """Return the host ports that running containers of `project` publish."""
    containers = engine.client().containers.list(
        filters={"label": f"com.docker.compose.project={project}"}
    )
    ports = set()
    for container in containers:
        for bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).values():
            ports.update(int(binding["HostPort"]) for binding in bindings or [])
    return ports


def check_free(env: dict[str, str], project: str, names: dict[str, int | None]) -> None:
    """Raise LhdError naming the setting when a port of `names` is taken.

    Ports that the project's own running containers publish count as free,
    so running a task again while the stack is up passes.
    """
    address = env.get("BIND_ADDRESS") or "127.0.0.1"
    own = published_by(project)
    for name, default in names.items():
        value = env.get(name) or (str(default) if default else "")
        if not value:
            continue
        port = port_number(name, value)
        if port in own:
            continue
        with socket.socket(
            socket.AF_INET6 if ":" in address else socket.AF_INET
        ) as probe:
            # Docker binds with SO_REUSEADDR too, so a port that only has
            # connections in TIME_WAIT, after a stack stopped, counts as free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError as error:
                raise LhdError(
                    f"Port {port} on {address} ({name} in .env) is not available: "
                    f"{error.strerror}. Stop the program that uses it, or set "
                    f"{name} to a free port in .env."
                ) from error
