"""`fab bootstrap`: prepare a server for the stack, idempotently.

Creates the stack's folders, checks the TLS pair, writes `.env.production`
(generated secrets only where a value is missing), logs in to the registry
and turns the Docker engine into a swarm manager when it is not one yet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from lhd import prodenv, registry, server, ui
from lhd.errors import LhdError
from lhd.remote import RemoteRunner
from lhd.runner import stdin_is_terminal
from lhd.server import ServerPaths
from lhd.settings import Settings

PASSWORD_VARIABLE = "LHD_REGISTRY_PASSWORD"
SEND_GRID_VARIABLE = "LHD_SEND_GRID_KEY"


@dataclass
class Inputs:
    """What a person supplies; None means "keep the current value or ask"."""

    domain: str | None = None
    tls: bool | None = None
    send_grid_key: str | None = None
    registry_user: str | None = None
    registry_password: str | None = None
    skip_login: bool = False
    advertise_address: str | None = None
    prompted: list[str] = field(default_factory=list)


def mkdir_argv(paths: ServerPaths) -> list[str]:
    return ["mkdir", "-p", *paths.folders()]


def swarm_state_argv() -> list[str]:
    return ["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"]


def swarm_init_argv(address: str) -> list[str]:
    return ["docker", "swarm", "init", "--advertise-addr", address]


def server_address(ssh_connection: str) -> str | None:
    """Return the server's address from SSH_CONNECTION (client, port, server, port)."""
    fields = ssh_connection.split()
    return fields[2] if len(fields) == 4 else None


def ask(label: str, option: str, secret: bool = False) -> str:
    """Prompt for a value on the terminal, or fail naming the option to use."""
    if not stdin_is_terminal():
        raise LhdError(f"No value for {label}: give {option} (there is no terminal).")
    value = ui.console().input(f"{label}: ", password=secret).strip()
    if not value:
        raise LhdError(f"No value for {label} entered: give {option}.")
    return value


def ask_tls() -> bool:
    if not stdin_is_terminal():
        raise LhdError(
            "No value for TLS: give --tls or --no-tls (there is no terminal)."
        )
    from rich.prompt import Confirm

    return Confirm.ask("Serve HTTPS with your own certificate pair (TLS)?")


def supplied_values(inputs: Inputs, current: dict[str, str]) -> dict[str, str]:
    """Return the values a person supplied, prompting for those still missing."""
    supplied: dict[str, str] = {}
    if inputs.domain:
        supplied["APP_DOMAIN"] = inputs.domain
    if inputs.tls is not None:
        supplied["TLS"] = "true" if inputs.tls else "false"
    key = inputs.send_grid_key or os.environ.get(SEND_GRID_VARIABLE)
    if key:
        supplied["SEND_GRID_KEY"] = key
    for name in prodenv.missing_supplied(current, supplied):
        if name == "TLS":
            supplied[name] = "true" if ask_tls() else "false"
        elif name == "SEND_GRID_KEY":
            supplied[name] = ask(
                "SendGrid API key", f"the {SEND_GRID_VARIABLE} variable", secret=True
            )
        else:
            supplied[name] = ask("App domain", "--domain")
        inputs.prompted.append(name)
    return supplied


def write_env(
    remote: RemoteRunner, paths: ServerPaths, settings: Settings, inputs: Inputs
) -> list[str]:
    """Create or complete `.env.production`; return the names of changed keys."""
    content = remote.get(paths.env_file) if remote.exists(paths.env_file) else None
    current = prodenv.parse(content) if content is not None else {}
    if not current.get("APP_DOMAIN") and not inputs.domain and settings.app_domain:
        inputs.domain = settings.app_domain
    check_database_credentials(remote, paths, current)
    changes = prodenv.complete(
        current, supplied_values(inputs, current), settings, paths
    )
    if changes:
        remote.put(prodenv.merged(content, changes), paths.env_file, private=True)
    else:
        remote.run(["chmod", "600", paths.env_file], hide=True, what="Setting mode")
    return sorted(changes)


# Postgres keeps these in its data folder from the first start on; new
# generated values would lock the app out of an existing database.
DATABASE_KEYS = ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
# True for a folder with entries, or one this user cannot read (Postgres
# makes its files private to its own user, so unreadable means in use).
HOLDS_FILES = '[ -d "$1" ] && { ! [ -r "$1" ] || [ -n "$(ls -A "$1")" ]; }'


def check_database_credentials(
    remote: RemoteRunner, paths: ServerPaths, current: dict[str, str]
) -> None:
    """Refuse to generate database credentials for a database that exists."""
    missing = [key for key in DATABASE_KEYS if not current.get(key)]
    if not missing:
        return
    if not remote.succeeds(["sh", "-c", HOLDS_FILES, "sh", paths.postgres_dir]):
        return
    raise LhdError(
        f"{paths.env_file} on {remote.host} has no value for {', '.join(missing)}, "
        f"but {paths.postgres_dir} already holds a database created with the old "
        "values. A new generated value would lock the app out of it: put the old "
        "values back into the file (from a copy or your password manager), then "
        "run bootstrap again."
    )


def check_certificates(remote: RemoteRunner, paths: ServerPaths) -> None:
    missing = [
        path
        for path in (paths.cert_file, paths.key_file)
        if not remote.succeeds(["test", "-s", path])
    ]
    if missing:
        raise LhdError(
            f"TLS is true but {' and '.join(missing)} is missing or empty on "
            f"{remote.host}. Put the certificate chain in {paths.cert_file} and its "
            f"private key in {paths.key_file} (PEM), for example from certbot, or "
            "make a self-signed pair for a test: `openssl req -x509 -newkey "
            f"rsa:2048 -nodes -days 365 -subj /CN=<domain> -keyout {paths.key_file} "
            f"-out {paths.cert_file}`. Or run bootstrap with --no-tls."
        )


def login(remote: RemoteRunner, settings: Settings, inputs: Inputs) -> str:
    host = registry.registry_host(settings.registry_image)
    user = inputs.registry_user or ask(f"Registry user for {host}", "--registry-user")
    password = (
        inputs.registry_password
        or os.environ.get(PASSWORD_VARIABLE)
        or ask(
            f"Registry password or token for {user}@{host}",
            f"the {PASSWORD_VARIABLE} variable",
            secret=True,
        )
    )
    registry.login(remote, host, user, password)
    return host


def init_swarm(remote: RemoteRunner, address: str | None) -> str | None:
    """Make the engine a swarm manager unless it is in a swarm; return the address."""
    state = remote.output(swarm_state_argv(), what="Reading the swarm state").strip()
    if state == "active":
        return None
    if not address:
        ssh_connection = remote.run(
            ["printenv", "SSH_CONNECTION"], hide=True, check=False
        ).stdout
        address = server_address(ssh_connection)
    if not address:
        raise LhdError(
            f"Cannot tell the address of {remote.host} as it sees itself "
            "(SSH_CONNECTION is not set): give --advertise-address."
        )
    # The output contains the worker join token, so it is hidden and dropped.
    remote.run(
        swarm_init_argv(address), hide=True, what=f"docker swarm init on {address}"
    )
    return address


def bootstrap(
    remote: RemoteRunner, settings: Settings, inputs: Inputs
) -> tuple[ServerPaths, list[str]]:
    """Run every bootstrap step; return the paths and the changed keys."""
    paths = server.locate(remote, settings.stack_name)
    ui.step(f"Creating the folders of {settings.stack_name} in {paths.root}")
    remote.run(mkdir_argv(paths), hide=True, what="Creating folders")
    remote.run(["chmod", "700", paths.root], hide=True, what="Setting mode")

    ui.step(f"Writing {paths.env_file}")
    changed = write_env(remote, paths, settings, inputs)
    ui.done(f"Set {', '.join(changed)}" if changed else f"{paths.env_file} is complete")
    values = prodenv.read_from(remote, paths)
    if values.get("TLS") == "true":
        check_certificates(remote, paths)
        ui.done("Found the TLS certificate pair")

    if inputs.skip_login:
        ui.warn("Skipped the registry login (--skip-login)")
    else:
        host = login(remote, settings, inputs)
        ui.done(f"Logged in to {host}")

    address = init_swarm(remote, inputs.advertise_address)
    if address:
        ui.done(f"Initialized a swarm advertised on {address}")
    else:
        ui.done("The engine is already in an active swarm")
    return paths, changed
