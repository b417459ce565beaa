"""Changes that `copier update` cannot make by merging files, run by the
template's `_migrations` when an update crosses the version that needs them.

`.env` is generated and ignored by git, so Copier never merges it: when a
template version renames a setting or moves it to another dotenv file, a
migration here carries the user's value over. Standard library only,
because it runs with the Python that runs Copier.

Usage: python -m lhd.upgrade move-env NAME SOURCE TARGET [--rename NEW_NAME]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

LOG_FILE = Path(".lhd/upgrade.log")


def line_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*(?:export\s+)?{re.escape(name)}\s*=(.*)$")


def move_env(
    root: Path, name: str, source: str, target: str, new_name: str | None = None
) -> str:
    """Move the line of `name` from dotenv file `source` to `target`.

    Keeps the value exactly as written. Returns what was done, for the log.
    Does nothing when `source` has no such line, and keeps a value that
    `target` already has.
    """
    new_name = new_name or name
    source_path, target_path = root / source, root / target
    if not source_path.exists():
        return f"{source} not found; nothing to move"
    pattern = line_pattern(name)
    source_lines = source_path.read_text(encoding="utf-8").splitlines()
    matches = [(index, pattern.match(line)) for index, line in enumerate(source_lines)]
    found = [(index, match) for index, match in matches if match]
    if not found:
        return f"{name} not in {source}; nothing to move"
    index, match = found[-1]
    value = match.group(1)
    if source_path == target_path:
        source_lines[index] = f"{new_name}={value}"
        write_private(source_path, source_lines)
        return f"renamed {name} to {new_name} in {source}"

    target_lines = (
        target_path.read_text(encoding="utf-8").splitlines()
        if target_path.exists()
        else []
    )
    if any(line_pattern(new_name).match(line) for line in target_lines):
        outcome = f"kept {new_name} already in {target}"
    else:
        target_lines.append(f"{new_name}={value}")
        write_private(target_path, target_lines)
        outcome = f"moved {name} from {source} to {target}" + (
            f" as {new_name}" if new_name != name else ""
        )
    del source_lines[index]
    write_private(source_path, source_lines)
    return outcome


def write_private(path: Path, lines: list[str]) -> None:
    temporary = path.with_name(f".{path.name}.upgrade")
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def log(root: Path, message: str) -> None:
    path = root / LOG_FILE
    path.parent.mkdir(exist_ok=True)
    # timezone.utc, not datetime.UTC: Copier may run on Python 3.9 or 3.10.
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")  # noqa: UP017
    with path.open("a", encoding="utf-8") as stream:
        stream.write(f"{stamp} {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lhd.upgrade", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    move = commands.add_parser("move-env", help="Move a setting between dotenv files.")
    move.add_argument("name", help="Variable to move.")
    move.add_argument(
        "source", help="Dotenv file it is in, relative to the project root."
    )
    move.add_argument("target", help="Dotenv file it goes to.")
    move.add_argument("--rename", metavar="NEW_NAME", help="New name of the variable.")
    arguments = parser.parse_args(argv)

    root = Path.cwd()
    message = move_env(
        root, arguments.name, arguments.source, arguments.target, arguments.rename
    )
    log(root, message)
    print(f"lhd.upgrade: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
