import json
import stat

import pytest

from lhd import devenv, envfile
from lhd.errors import LhdError
from lhd.settings import Settings

LUCKY_SERVER_CR = """\
Lucky::Server.configure do |settings|
  if LuckyEnv.production?
    settings.secret_key_base = secret_key_from_env
  else
    settings.secret_key_base = "%s"
  end
end
"""


def project(tmp_path, secret=None):
    if secret is not None:
        (tmp_path / "config").mkdir()
        (tmp_path / "config" / "server.cr").write_text(LUCKY_SERVER_CR % secret)
    (tmp_path / ".env.example").write_text(
        "# doc\nHASURA_GRAPHQL_ADMIN_SECRET='secret'\nPROJECT_NAME=''\n"
    )
    return Settings(
        tmp_path, "demo", "registry.invalid/demo/lucky", "demo", "demo.localhost"
    )


def test_sync_reads_lucky_literal(tmp_path):
    key = "Xq/4mD+9vL0e2bH7tYz1sW8kR3nP6cJ5uA==jF0gE1iK"
    values = devenv.sync(project(tmp_path, key))
    assert values["DEV_SECRET_KEY_BASE"] == key
    assert json.loads(values["HASURA_GRAPHQL_JWT_SECRET"]) == {
        "type": "HS256",
        "key": key,
    }
    assert values["PROJECT_NAME"] == "demo"
    assert values["HASURA_GRAPHQL_ADMIN_SECRET"] == "secret"
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600


def test_sync_key_with_quote_slash_equals(tmp_path):
    # The Crystal literal "ab\"cd/..." holds a double quote.
    literal = 'ab\\"cd/ef==' + "x" * 30
    key = 'ab"cd/ef==' + "x" * 30
    values = devenv.sync(project(tmp_path, literal))
    assert values["DEV_SECRET_KEY_BASE"] == key
    assert json.loads(values["HASURA_GRAPHQL_JWT_SECRET"])["key"] == key


def test_sync_generates_key_once_without_lucky(tmp_path):
    settings = project(tmp_path)
    first = devenv.sync(settings)["DEV_SECRET_KEY_BASE"]
    second = devenv.sync(settings)["DEV_SECRET_KEY_BASE"]
    assert len(first) >= devenv.MIN_JWT_KEY_LENGTH
    assert first == second


def test_sync_rejects_short_key(tmp_path):
    with pytest.raises(LhdError, match="31 characters.*at least 32"):
        devenv.sync(project(tmp_path, "k" * 31))


def test_sync_follows_changed_literal(tmp_path):
    settings = project(tmp_path, "a" * 40)
    devenv.sync(settings)
    (tmp_path / "config" / "server.cr").write_text(LUCKY_SERVER_CR % ("b" * 40))
    assert devenv.sync(settings)["DEV_SECRET_KEY_BASE"] == "b" * 40


def test_sync_keeps_user_settings(tmp_path):
    settings = project(tmp_path, "a" * 40)
    devenv.sync(settings)
    envfile.update(tmp_path / ".env", {"HASURA_GRAPHQL_ADMIN_SECRET": "mine"})
    assert devenv.sync(settings)["HASURA_GRAPHQL_ADMIN_SECRET"] == "mine"


def test_sync_without_example_names_fix(tmp_path):
    settings = project(tmp_path, "a" * 40)
    (tmp_path / ".env.example").unlink()
    with pytest.raises(LhdError, match="copier update"):
        devenv.sync(settings)
