import os
import stat

import pytest

from lhd import envfile
from lhd.errors import LhdError


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("plain", "KEY='plain'"),
        ("$apr1$ab$cd", "KEY='$apr1$ab$cd'"),
        ("${X}", "KEY='${X}'"),
        ('a"b/c=d+e', "KEY='a\"b/c=d+e'"),
        ("it's", 'KEY="it\'s"'),
        ('back\\slash "q"', 'KEY="back\\\\slash \\"q\\""'),
        ("", "KEY=''"),
        ("has # hash and spaces", "KEY='has # hash and spaces'"),
    ],
)
def test_format_line_quotes(value, line):
    assert envfile.format_line("KEY", value) == line


@pytest.mark.parametrize(
    "value", ["'${X}'", "a\\$b", "two\nlines", "SG.x'`touch /tmp/x`"]
)
def test_format_line_rejects_ambiguous(value):
    with pytest.raises(LhdError, match="KEY"):
        envfile.format_line("KEY", value)


def test_format_line_rejects_bad_key():
    with pytest.raises(LhdError, match="Invalid variable name"):
        envfile.format_line("1KEY", "x")


@pytest.mark.parametrize(
    "value", ["$apr1$ab$cd", "${X}", "it's", 'q"uote\\', "a/b+c==", "#x", " lead"]
)
def test_update_round_trips_through_dotenv(tmp_path, value):
    path = tmp_path / ".env"
    envfile.update(path, {"VALUE": value})
    assert envfile.read(path)["VALUE"] == value


def test_update_keeps_other_lines(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# comment\nA='1'\nexport B=2\n\nC=3\n")
    changed = envfile.update(path, {"B": "two", "D": "four"})
    assert changed
    assert path.read_text() == "# comment\nA='1'\nB='two'\n\nC=3\nD='four'\n"


def test_update_creates_from_template_private(tmp_path):
    path = tmp_path / ".env"
    envfile.update(path, {"A": "x"}, template="# doc\nA=''\nB='b'\n")
    assert path.read_text() == "# doc\nA='x'\nB='b'\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_update_unchanged_reports_false_and_fixes_mode(tmp_path):
    path = tmp_path / ".env"
    path.write_text("A='x'\n")
    os.chmod(path, 0o644)
    assert envfile.update(path, {"A": "x"}) is False
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_read_missing_names_file(tmp_path):
    with pytest.raises(LhdError, match="not found"):
        envfile.read(tmp_path / ".env")


def test_read_unreadable_names_fix(tmp_path, monkeypatch):
    path = tmp_path / ".env"
    path.write_text("A='x'\n")

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    # Root reads files whatever their mode, so the denial is simulated.
    monkeypatch.setattr(type(path), "open", deny)
    with pytest.raises(LhdError, match="not readable.*chmod 600"):
        envfile.read(path)


@pytest.mark.parametrize("line", ["NOT A SETTING", "KEY='unterminated", "=value"])
def test_read_rejects_unparsable_line(tmp_path, line):
    path = tmp_path / ".env"
    path.write_text(f"A='1'\n{line}\nB='2'\n")
    with pytest.raises(LhdError) as raised:
        envfile.read(path)
    message = str(raised.value)
    assert "line 2:" in message
    assert "NAME='value'" in message


@pytest.mark.parametrize(
    "value", ["$apr1$ab$cd", "it's", 'q"uote\\', "a`b`", "#x y", "a/b+c=="]
)
def test_written_file_sources_in_sh(tmp_path, value):
    import subprocess

    path = tmp_path / ".env"
    envfile.update(path, {"VALUE": value})
    printed = subprocess.run(
        ["sh", "-c", 'set -a && . "$1" && printf %s "$VALUE"', "sh", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == value
