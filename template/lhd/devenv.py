"""The development `.env`: created from `.env.example`, with the values that
are derived from the project filled in on every run.

Lucky signs development JWTs with the `secret_key_base` literal in
`config/server.cr`; Hasura must verify them with the same key. The key is
read from there (or generated once when the project has no such literal)
and written to `.env` both as `DEV_SECRET_KEY_BASE` and inside the JSON
of `HASURA_GRAPHQL_JWT_SECRET`.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

from lhd import envfile
from lhd.errors import LhdError
from lhd.settings import Settings

# Hasura rejects HS256 keys shorter than this (graphql-engine v2).
MIN_JWT_KEY_LENGTH = 32

SERVER_CONFIG = Path("config/server.cr")
# Lucky 1.x writes the development key as the only string literal assigned to
# `settings.secret_key_base`; production reads it from the environment.
SECRET_LITERAL = re.compile(r'settings\.secret_key_base\s*=\s*"((?:[^"\\]|\\.)*)"')
CRYSTAL_ESCAPES = {'\\"': '"', "\\\\": "\\", "\\#": "#"}


def read_lucky_secret(root: Path) -> str | None:
    """Return the development secret literal from `config/server.cr`, if any."""
    path = root / SERVER_CONFIG
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    match = SECRET_LITERAL.search(source)
    if not match:
        return None
    return re.sub(
        r"\\.", lambda m: CRYSTAL_ESCAPES.get(m.group(0), m.group(0)), match.group(1)
    )


def jwt_secret_json(key: str) -> str:
    """Return the value of HASURA_GRAPHQL_JWT_SECRET for an HS256 `key`."""
    return json.dumps({"type": "HS256", "key": key}, separators=(",", ":"))


def validate_key(key: str, source: str) -> None:
    if len(key) < MIN_JWT_KEY_LENGTH:
        raise LhdError(
            f"The development secret key base from {source} has {len(key)} "
            f"characters, but Hasura needs at least {MIN_JWT_KEY_LENGTH} to "
            "verify HS256 JWTs. Replace it with a longer one, for example "
            "the output of `openssl rand -base64 48`."
        )


def sync(settings: Settings, check_key: bool = True) -> dict[str, str]:
    """Create or refresh `.env` and return its values.

    `check_key` raises for a key that Hasura would reject. Tasks that only
    stop or inspect the stack pass False, so they work while the key is
    being fixed.
    """
    path = settings.env_file
    current = envfile.read(path) if path.exists() else {}
    key = read_lucky_secret(settings.root)
    source = str(SERVER_CONFIG)
    if key is None:
        key = current.get("DEV_SECRET_KEY_BASE") or secrets.token_urlsafe(48)
        source = f"DEV_SECRET_KEY_BASE in {path.name}"
    if check_key:
        validate_key(key, source)
    derived = {
        "PROJECT_NAME": settings.project_name,
        "DEV_SECRET_KEY_BASE": key,
        "HASURA_GRAPHQL_JWT_SECRET": jwt_secret_json(key),
    }
    template = ""
    if not path.exists():
        try:
            template = settings.env_example_file.read_text(encoding="utf-8")
        except FileNotFoundError as error:
            raise LhdError(
                f"Neither {path} nor {settings.env_example_file} exists; "
                "restore .env.example with `copier update` or from git."
            ) from error
    try:
        envfile.update(path, derived, template=template)
    except LhdError as error:
        raise LhdError(
            f"{error} The value comes from {source}; change it there."
        ) from error
    return envfile.read(path)
