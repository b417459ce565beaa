"""The server's `.env.production`: generated secrets, values a person
supplies, and values derived from both.

Bootstrap fills in only what is missing, so running it again changes
nothing: a generated secret is written once and then kept. Derived values
(DATABASE_URL, HASURA_GRAPHQL_JWT_SECRET, ADMIN_PASSWORD_HASH) are
recomputed from their sources and rewritten only when those change.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from lhd import devenv, htpasswd
from lhd.errors import LhdError
from lhd.server import ServerPaths
from lhd.settings import Settings

TEMPLATE = """\
# Production settings of this stack, written by `fab bootstrap`. Mode 0600:
# it holds the secrets. Generated values are kept on every later bootstrap;
# edit a value here and run bootstrap again to recompute the derived ones.
"""

# Generated once with `secrets`; token_urlsafe output needs no quoting in
# a URL, a dotenv file or a shell.
GENERATED: dict[str, Callable[[], str]] = {
    "POSTGRES_PASSWORD": lambda: secrets.token_urlsafe(32),
    "HASURA_GRAPHQL_ADMIN_SECRET": lambda: secrets.token_urlsafe(32),
    # Lucky's secret key base; Hasura verifies HS256 JWTs with the same key.
    "SECRET_KEY_BASE": lambda: secrets.token_urlsafe(48),
    "ADMIN_PASSWORD": lambda: secrets.token_urlsafe(18),
}

# Values a person supplies: the bootstrap option that sets each one.
SUPPLIED_OPTIONS = {
    "APP_DOMAIN": "--domain",
    "SEND_GRID_KEY": "the LHD_SEND_GRID_KEY environment variable",
    "TLS": "--tls or --no-tls",
}

# Values that must never appear in a command line, a log or the output.
SECRET_KEYS = (
    "POSTGRES_PASSWORD",
    "DATABASE_URL",
    "HASURA_GRAPHQL_ADMIN_SECRET",
    "SECRET_KEY_BASE",
    "HASURA_GRAPHQL_JWT_SECRET",
    "ADMIN_PASSWORD",
    "ADMIN_PASSWORD_HASH",
    "SEND_GRID_KEY",
)

# What the stack files and the deploy steps read.
REQUIRED_KEYS = (
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "DATABASE_URL",
    "HASURA_GRAPHQL_ADMIN_SECRET",
    "SECRET_KEY_BASE",
    "HASURA_GRAPHQL_JWT_SECRET",
    "ADMIN_USER",
    "ADMIN_PASSWORD_HASH",
    "APP_DOMAIN",
    "SEND_GRID_KEY",
    "TLS",
    "DATA_DIR",
    "CERTS_DIR",
)


def defaults(settings: Settings) -> dict[str, str]:
    return {
        "POSTGRES_USER": settings.project_name,
        "POSTGRES_DB": f"{settings.project_name}_production",
        "ADMIN_USER": "admin",
    }


def database_url(values: dict[str, str]) -> str:
    return (
        f"postgres://{values['POSTGRES_USER']}:{values['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{values['POSTGRES_DB']}"
    )


def password_matches(password: str, hashed: str) -> bool:
    from passlib.hash import apr_md5_crypt, bcrypt

    for scheme in (bcrypt, apr_md5_crypt):
        if scheme.identify(hashed):
            return scheme.verify(password, hashed)
    return False


def missing_supplied(current: dict[str, str], supplied: dict[str, str]) -> list[str]:
    """Return the keys a person must supply that neither source has."""
    return [
        key for key in SUPPLIED_OPTIONS if not (supplied.get(key) or current.get(key))
    ]


def complete(
    current: dict[str, str],
    supplied: dict[str, str],
    settings: Settings,
    paths: ServerPaths,
) -> dict[str, str]:
    """Return the values to write: every key whose value is new or changed.

    `supplied` values replace current ones; defaults and generated secrets
    fill only empty keys. Returns an empty dict when the file is complete.
    """
    values = dict(current)
    for key, value in defaults(settings).items():
        values[key] = values.get(key) or value
    for key, generate in GENERATED.items():
        values[key] = values.get(key) or generate()
    for key, value in supplied.items():
        if value:
            values[key] = value
    missing = missing_supplied(values, {})
    if missing:
        raise LhdError(
            "No value for "
            + ", ".join(f"{key} (give {SUPPLIED_OPTIONS[key]})" for key in missing)
            + "."
        )
    devenv.validate_key(values["SECRET_KEY_BASE"], "SECRET_KEY_BASE")
    values["DATABASE_URL"] = database_url(values)
    values["HASURA_GRAPHQL_JWT_SECRET"] = devenv.jwt_secret_json(
        values["SECRET_KEY_BASE"]
    )
    hashed = values.get("ADMIN_PASSWORD_HASH", "")
    if not hashed or not password_matches(values["ADMIN_PASSWORD"], hashed):
        values["ADMIN_PASSWORD_HASH"] = htpasswd.hash_password(values["ADMIN_PASSWORD"])
    values["DATA_DIR"] = paths.data_dir
    values["CERTS_DIR"] = paths.certs_dir
    return {key: value for key, value in values.items() if current.get(key) != value}


def require(values: dict[str, str], path: str, host: str) -> None:
    """Raise LhdError naming every required key that is missing or empty."""
    missing = [key for key in REQUIRED_KEYS if not values.get(key)]
    if missing:
        raise LhdError(
            f"{path} on {host} has no value for {', '.join(missing)}. "
            f"Run `fab -H {host} bootstrap` to fill in the missing values."
        )


def secret_values(values: dict[str, str]) -> list[str]:
    """Return the secret values of `values`, for checks that none leaked."""
    return [values[key] for key in SECRET_KEYS if values.get(key)]


def parse(content: bytes) -> dict[str, str]:
    """Parse dotenv `content` the way `lhd.envfile.read` reads a file."""
    import tempfile
    from pathlib import Path

    from lhd import envfile

    with tempfile.TemporaryDirectory(prefix="lhd-env-") as folder:
        path = Path(folder) / ".env.production"
        envfile.write_private(path, content.decode("utf-8"))
        return envfile.read(path)


def merged(content: bytes | None, changes: dict[str, str]) -> bytes:
    """Return `content` with `changes` set, as `lhd.envfile.update` writes it."""
    import tempfile
    from pathlib import Path

    from lhd import envfile

    with tempfile.TemporaryDirectory(prefix="lhd-env-") as folder:
        path = Path(folder) / ".env.production"
        if content is not None:
            envfile.write_private(path, content.decode("utf-8"))
        envfile.update(path, changes, template=TEMPLATE)
        return path.read_bytes()


def read_from(remote, paths: ServerPaths) -> dict[str, str]:
    """Read `.env.production` from the server; raise LhdError when it is missing."""
    if not remote.exists(paths.env_file):
        raise LhdError(
            f"{paths.env_file} not found on {remote.host}: run "
            f"`fab -H {remote.host} bootstrap` first."
        )
    return parse(remote.get(paths.env_file))
