"""Find and inspect the containers of a Compose project through the Docker SDK."""

from __future__ import annotations

from lhd import engine
from lhd.readiness import Failed, NotReady

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"


def find(project: str, service: str):
    """Return the running or stopped service container, or None."""
    containers = engine.client().containers.list(
        all=True,
        filters={
            "label": [
                f"{PROJECT_LABEL}={project}",
                f"{SERVICE_LABEL}={service}",
                f"{ONEOFF_LABEL}=False",
            ]
        },
    )
    return containers[0] if containers else None


def running(project: str, service: str) -> bool:
    container = find(project, service)
    return container is not None and container.status == "running"


def require_running(project: str, service: str):
    """Return the service container; raise Failed when it has exited."""
    container = find(project, service)
    if container is None:
        raise NotReady(f"no {service} container yet")
    container.reload()
    state = container.attrs["State"]
    if state["Status"] in ("exited", "dead"):
        raise Failed(f"the {service} container exited with code {state['ExitCode']}")
    if state["Status"] != "running":
        raise NotReady(f"{service} is {state['Status']}")
    return container


def published_port(project: str, service: str, port: int) -> int:
    """Return the host port that `port` of the service is published on."""
    container = require_running(project, service)
    bindings = container.attrs["NetworkSettings"]["Ports"].get(f"{port}/tcp") or []
    if not bindings:
        raise NotReady(f"port {port} of {service} is not published yet")
    return int(bindings[0]["HostPort"])


def last_logs(project: str, service: str, lines: int = 30) -> str:
    container = find(project, service)
    if container is None:
        return f"(no {service} container)"
    text = container.logs(tail=lines).decode("utf-8", "replace")
    return f"Last {lines} log lines of {service}:\n{text}"


def postgres_ready(project: str):
    """Return a check that passes when Postgres accepts TCP connections.

    The check uses TCP on 127.0.0.1 because the official image's entrypoint
    first runs a temporary server on the Unix socket only, while it runs
    the init scripts, and then restarts it.
    """

    def check() -> None:
        container = require_running(project, "postgres")
        result = container.exec_run(
            ["pg_isready", "--quiet", "--host", "127.0.0.1", "--username", "postgres"]
        )
        if result.exit_code != 0:
            raise NotReady("pg_isready reports the server is not accepting connections")

    return check
