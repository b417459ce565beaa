"""`.env.production` generation: secrets once, derived values, idempotence."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from lhd import prodenv
from lhd.errors import LhdError
from lhd.server import ServerPaths
from lhd.settings import Settings

SETTINGS = Settings(
    root=Path("/project"),
    project_name="shop",
    registry_image="registry.example.org/me/shop/lucky",
    stack_name="shop",
    app_domain="shop.example.org",
)
PATHS = ServerPaths(home="/home/deploy", stack="shop")
SUPPLIED = {"APP_DOMAIN": "shop.example.org", "SEND_GRID_KEY": "SG.key", "TLS": "false"}


def first_run() -> dict[str, str]:
    return prodenv.complete({}, SUPPLIED, SETTINGS, PATHS)


def test_first_run_sets_every_required_key():
    values = first_run()
    missing = [key for key in prodenv.REQUIRED_KEYS if not values.get(key)]
    assert missing == []


def test_database_url_is_derived():
    values = first_run()
    assert values["DATABASE_URL"] == (
        f"postgres://shop:{values['POSTGRES_PASSWORD']}@postgres:5432/shop_production"
    )


def test_jwt_secret_uses_secret_key_base():
    values = first_run()
    jwt = json.loads(values["HASURA_GRAPHQL_JWT_SECRET"])
    assert jwt == {"type": "HS256", "key": values["SECRET_KEY_BASE"]}


def test_admin_hash_matches_password():
    values = first_run()
    assert values["ADMIN_PASSWORD_HASH"].startswith("$2y$")
    assert prodenv.password_matches(
        values["ADMIN_PASSWORD"], values["ADMIN_PASSWORD_HASH"]
    )


def test_paths_are_absolute_server_paths():
    values = first_run()
    assert values["DATA_DIR"] == "/home/deploy/shop/data"
    assert values["CERTS_DIR"] == "/home/deploy/shop/certs"


def test_second_run_changes_nothing():
    values = first_run()
    assert prodenv.complete(values, SUPPLIED, SETTINGS, PATHS) == {}
    assert prodenv.complete(values, {}, SETTINGS, PATHS) == {}


def test_generated_secrets_differ_between_servers():
    assert first_run()["POSTGRES_PASSWORD"] != first_run()["POSTGRES_PASSWORD"]


def test_changed_password_rederives_url_only():
    values = first_run()
    values["POSTGRES_PASSWORD"] = "changed-by-hand"
    changes = prodenv.complete(values, {}, SETTINGS, PATHS)
    assert set(changes) == {"DATABASE_URL"}
    assert "changed-by-hand@" in changes["DATABASE_URL"]


def test_changed_admin_password_rehashes():
    values = first_run()
    values["ADMIN_PASSWORD"] = "new-admin-password"
    changes = prodenv.complete(values, {}, SETTINGS, PATHS)
    assert set(changes) == {"ADMIN_PASSWORD_HASH"}
    assert prodenv.password_matches(
        "new-admin-password", changes["ADMIN_PASSWORD_HASH"]
    )


def test_supplied_value_replaces_current():
    values = first_run()
    changes = prodenv.complete(values, {"TLS": "true"}, SETTINGS, PATHS)
    assert changes == {"TLS": "true"}


def test_missing_supplied_value_names_option():
    with pytest.raises(LhdError, match="SEND_GRID_KEY \\(give the LHD_SEND_GRID_KEY"):
        prodenv.complete(
            {}, {"APP_DOMAIN": "a.example.org", "TLS": "false"}, SETTINGS, PATHS
        )


def test_merged_file_is_private_and_parses(tmp_path):
    values = first_run()
    content = prodenv.merged(None, values)
    assert prodenv.parse(content) == values
    again = prodenv.merged(content, {})
    assert again == content


def test_envfile_update_writes_mode_0600(tmp_path):
    from lhd import envfile

    path = tmp_path / ".env.production"
    envfile.update(path, first_run(), template=prodenv.TEMPLATE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_require_names_missing_keys():
    values = first_run()
    del values["SECRET_KEY_BASE"]
    values["TLS"] = ""
    with pytest.raises(LhdError) as raised:
        prodenv.require(values, PATHS.env_file, "server.test")
    message = str(raised.value)
    assert "SECRET_KEY_BASE, TLS" in message
    assert "fab -H server.test bootstrap" in message


def test_secret_values_lists_only_secrets():
    values = first_run()
    secrets = prodenv.secret_values(values)
    assert values["SECRET_KEY_BASE"] in secrets
    assert values["APP_DOMAIN"] not in secrets
