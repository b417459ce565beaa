"""`inv status`: a table of the development services."""

from __future__ import annotations

from lhd import containers, dev, ui
from lhd.settings import Settings

SERVICES = ("postgres", "hasura", "lucky")
URLS = {
    "hasura": ("HASURA_PORT", dev.HASURA_PORT, ""),
    "lucky": ("LUCKY_PORT", dev.LUCKY_PORT, ""),
}


def show(settings: Settings, env: dict[str, str]) -> None:
    from rich.table import Table

    table = Table(title=f"{settings.project_name} development stack")
    for column in ("service", "state", "health", "URL"):
        table.add_column(column)
    address = dev.host_address(env)
    for service in SERVICES:
        container = containers.find(settings.project_name, service)
        if container is None:
            table.add_row(service, "absent", "-", "-")
            continue
        state = container.attrs["State"]
        health = state.get("Health", {}).get("Status", "no check")
        url = "-"
        if service in URLS and state["Status"] == "running":
            key, default, path = URLS[service]
            url = f"http://{address}:{env.get(key, default)}{path}"
        table.add_row(service, state["Status"], health, url)
    ui.console().print(table)
