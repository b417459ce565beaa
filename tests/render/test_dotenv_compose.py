"""What the task library writes to `.env`, python-dotenv reads and Docker
Compose resolves must be the same value."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from dotenv import dotenv_values

from conftest import generate
from lhd import envfile
from lhd.errors import LhdError

VALUES = {
    "APR1_HASH": "$apr1$ab$cd",
    "BRACED": "${X}",
    "BCRYPT_HASH": "$2y$05$abcdefghijklmnopqrstuv",
    "QUOTES": 'it\'s "quoted"',
    "BACKSLASH": "a\\b",
    "SPECIALS": "a b#c/d=e+f",
}


def resolve(compose_command, folder, names):
    """Return the environment Compose gives a service for `${NAME}` entries."""
    service = {
        "image": "scratch",
        "environment": {name: f"${{{name}}}" for name in names},
    }
    (folder / "compose.yml").write_text(json.dumps({"services": {"probe": service}}))
    result = subprocess.run(
        [
            *compose_command,
            "--env-file",
            str(folder / ".env"),
            "--project-name",
            "probe",
        ]
        + ["--file", str(folder / "compose.yml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert result.returncode == 0, result.stderr
    environment = json.loads(result.stdout)["services"]["probe"]["environment"]
    # `config` escapes a literal `$` as `$$` so its output is valid input.
    return {name: value.replace("$$", "$") for name, value in environment.items()}


def test_written_values_agree(tmp_path, compose_command):
    envfile.update(tmp_path / ".env", VALUES)
    read = dotenv_values(tmp_path / ".env", interpolate=False)
    resolved = resolve(compose_command, tmp_path, VALUES)
    for name, value in VALUES.items():
        assert read[name] == value, name
        assert resolved[name] == value, name


def test_quoted_interpolation_line_agrees(tmp_path, compose_command):
    # A line written by hand to keep `${X}` literal reads the same both ways.
    (tmp_path / ".env").write_text("X='outer'\nLITERAL='${X}'\n")
    assert dotenv_values(tmp_path / ".env", interpolate=False)["LITERAL"] == "${X}"
    assert resolve(compose_command, tmp_path, ["LITERAL"])["LITERAL"] == "${X}"
    assert envfile.format_line("LITERAL", "${X}") == "LITERAL='${X}'"


def test_value_parsers_disagree_on_is_rejected(tmp_path):
    with pytest.raises(LhdError, match="mixes `\\$` or a backtick with a quote"):
        envfile.update(tmp_path / ".env", {"BOTH": "'${X}'"})
    assert not (tmp_path / ".env").exists()


def test_jwt_key_with_quote_slash_equals(tmp_path, compose_command):
    root = generate(tmp_path / "demo")
    key = 'k"ey/with=equals+' + "x" * 20
    crystal_literal = key.replace('"', '\\"')
    (root / "config").mkdir(exist_ok=True)
    (root / "config" / "server.cr").write_text(
        "Lucky::Server.configure do |settings|\n"
        f'  settings.secret_key_base = "{crystal_literal}"\n'
        "end\n"
    )
    from lhd import devenv, settings

    devenv.sync(settings.load(root))
    result = subprocess.run(
        [*compose_command, "--env-file", str(root / ".env"), "--project-name", "demo"]
        + ["--file", str(root / "Docker" / "compose.yml")]
        + [
            "--file",
            str(root / "Docker" / "compose.dev.yml"),
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    secret = json.loads(services["hasura"]["environment"]["HASURA_GRAPHQL_JWT_SECRET"])
    assert secret == {"type": "HS256", "key": key}
    assert services["lucky"]["environment"]["SECRET_KEY_BASE"] == key
