"""`fab status`: a table of the production services and the deployed version."""

from __future__ import annotations

import json

from lhd import release, swarm, ui
from lhd.deploy import Target

SERVICE_FORMAT = "{{json .}}"


def app_version(service: dict) -> str:
    """Return APP_VERSION from the environment of a service's spec, or '-'."""
    variables = service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or []
    for variable in variables:
        name, _, value = variable.partition("=")
        if name == "APP_VERSION":
            return value
    return "-"


def show(target: Target) -> None:
    from rich.table import Table

    stack = target.settings.stack_name
    output = target.remote.output(
        swarm.services_argv(stack, SERVICE_FORMAT), what="Listing services"
    )
    rows = [json.loads(line) for line in output.splitlines() if line.strip()]
    table = Table(title=f"Stack {stack} on {target.host}")
    for column in ("service", "mode", "replicas", "image"):
        table.add_column(column, overflow="fold")
    for row in sorted(rows, key=lambda row: row["Name"]):
        table.add_row(row["Name"], row["Mode"], row["Replicas"], row["Image"])
    ui.console().print(table)
    if not rows:
        ui.warn(f"No services of {stack}: deploy with `fab -H {target.host} deploy`.")
        return
    current = release.current_version(target.remote, target.paths) or "-"
    lucky = swarm.service_name(stack, "lucky")
    serving = "-"
    if any(row["Name"] == lucky for row in rows):
        (service,) = target.swarm.inspect([lucky])
        serving = app_version(service)
    ui.console().print(
        f"  deployed release (current): {current}\n"
        f"  version the lucky service runs (APP_VERSION): {serving}"
    )
