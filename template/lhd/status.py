"""`inv status`: a table of the development services."""

from __future__ import annotations

from lhd import containers, dev, ui
from lhd.settings import Settings

# Container ports whose published host port is the service's URL.
URL_PORTS = {"hasura": dev.HASURA_PORT, "lucky": dev.LUCKY_PORT}


def service_url(container, service: str, address: str) -> str:
    """Return the URL the running container publishes, read from Docker."""
    port = URL_PORTS.get(service)
    if port is None:
        return "-"
    bindings = container.attrs["NetworkSettings"]["Ports"].get(f"{port}/tcp") or []
    if not bindings:
        return "not published"
    return f"http://{dev.url_host(address)}:{bindings[0]['HostPort']}"


def show(settings: Settings, env: dict[str, str]) -> None:
    from rich.table import Table

    table = Table(title=f"{settings.project_name} development stack")
    for column in ("service", "state", "health", "URL"):
        table.add_column(column)
    address = dev.host_address(env)
    for service in dev.SERVICES:
        container = containers.find(settings.project_name, service)
        if container is None:
            table.add_row(service, "absent", "-", "-")
            continue
        state = container.attrs["State"]
        health = state.get("Health", {}).get("Status", "no check")
        running = state["Status"] == "running"
        url = service_url(container, service, address) if running else "-"
        table.add_row(service, state["Status"], health, url)
    ui.console().print(table)
