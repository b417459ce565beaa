"""Read and write dotenv files that python-dotenv and Docker Compose parse
the same way.

The two parsers agree only on part of the syntax (checked against
python-dotenv 1.2 and Compose 2.40):

- single quotes: both keep the text literally, `$` included, but
  python-dotenv decodes `\\\\` and `\\'` while Compose keeps the backslash;
- double quotes: both decode `\\\\` and `\\"`, but Compose expands `$`
  while python-dotenv (read with `interpolate=False`) keeps it.

The server also loads such files with `sh` (`set -a; . FILE`), where
double quotes expand `$` and backticks too.

So a value goes in single quotes unless it contains `'` or a backslash,
in double quotes unless it also contains `$` or a backtick, and is rejected
otherwise. Values are read back with `interpolate=False` so `$` stays
literal.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from lhd.errors import LhdError

KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LINE_KEY = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def format_line(key: str, value: str) -> str:
    """Return `KEY='value'` (or a double-quoted form) for a dotenv file."""
    if not KEY_PATTERN.fullmatch(key):
        raise LhdError(f"Invalid variable name {key!r}: use letters, digits and _.")
    if "\n" in value or "\r" in value or "\0" in value:
        raise LhdError(f"The value of {key} contains a line break; use one line.")
    if "'" not in value and "\\" not in value:
        return f"{key}='{value}'"
    if "$" not in value and "`" not in value:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{key}="{escaped}"'
    raise LhdError(
        f"The value of {key} mixes `$` or a backtick with a quote `'` or a "
        "backslash. python-dotenv and Docker Compose read such a value "
        "differently, and a shell that loads the file would run the backtick "
        "part as a command. Remove one of them."
    )


def read(path: Path) -> dict[str, str]:
    """Read a dotenv file with python-dotenv, keeping `$` literal.

    Raises LhdError for a missing or unreadable file, and for lines
    python-dotenv cannot parse, which it would otherwise skip with a warning.
    """
    import io

    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise LhdError(f"{path} not found.") from error
    except PermissionError as error:
        raise LhdError(
            f"{path} is not readable by this user ({error.strerror}). "
            f"Fix its owner or mode, for example `chmod 600 {path}`."
        ) from error
    except UnicodeDecodeError as error:
        raise LhdError(f"{path} is not UTF-8 text: {error}") from error
    invalid = [
        f"line {binding.original.line}: {binding.original.string.strip()}"
        for binding in parse_stream(io.StringIO(text))
        if binding.error
    ]
    if invalid:
        raise LhdError(
            f"{path} has lines that are not `NAME=value`: {'; '.join(invalid)}. "
            "Fix or delete them; quote values with single quotes, as in NAME='value'."
        )
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return {key: value or "" for key, value in values.items()}


def update(path: Path, values: dict[str, str], template: str = "") -> bool:
    """Set `values` in the dotenv file at `path`, keeping every other line.

    Creates the file from `template` when it is missing. Writes atomically
    with mode 0600 and returns True when the content changed.
    """
    try:
        original = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        original = None
    except PermissionError as error:
        raise LhdError(
            f"{path} is not readable by this user ({error.strerror}). "
            f"Fix its owner or mode, for example `chmod 600 {path}`."
        ) from error
    lines = (template if original is None else original).splitlines()
    pending = dict(values)
    for index, line in enumerate(lines):
        match = LINE_KEY.match(line)
        if match and match.group(1) in pending:
            lines[index] = format_line(match.group(1), pending.pop(match.group(1)))
    lines.extend(format_line(key, value) for key, value in pending.items())
    content = "\n".join(lines) + "\n"
    if content == original:
        ensure_private(path)
        return False
    write_private(path, content)
    return True


def write_private(path: Path, content: str) -> None:
    """Replace `path` with `content` atomically, readable by its owner only."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(content)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def ensure_private(path: Path) -> None:
    """Set mode 0600 on `path` when group or others can read it."""
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
