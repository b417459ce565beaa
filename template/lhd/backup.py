"""Database backups on the server: `pg_dump -Fc` from the running postgres
task into backups/, retention by count, and restore with `pg_restore`.

pg_dump and pg_restore run inside the postgres container, as its
POSTGRES_USER on the local socket, so no password is needed or passed.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from lhd.errors import LhdError
from lhd.remote import RemoteRunner
from lhd.server import ServerPaths

KEEP_BACKUPS = 10
BACKUP_NAME = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]+\.dump$")
# Redirect standard output to, or input from, the file in $1, then run the
# rest of the arguments.
# umask 077: a dump holds every row, so only the deploy user may read it.
TO_FILE_SCRIPT = 'umask 077 && out="$1" && shift && "$@" > "$out"'
FROM_FILE_SCRIPT = 'in="$1" && shift && exec "$@" < "$in"'
DUMP_SCRIPT = 'exec pg_dump --format=custom --username "$POSTGRES_USER" "$POSTGRES_DB"'
RESTORE_SCRIPT = (
    "exec pg_restore --clean --if-exists --no-owner --single-transaction "
    '--username "$POSTGRES_USER" --dbname "$POSTGRES_DB"'
)


def backup_name(version: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{version}.dump"


def dump_argv(container: str, path: str) -> list[str]:
    inner = ["docker", "exec", container, "sh", "-c", DUMP_SCRIPT]
    return ["sh", "-c", TO_FILE_SCRIPT, "lhd-backup", path, *inner]


def restore_argv(container: str, path: str) -> list[str]:
    inner = ["docker", "exec", "--interactive", container, "sh", "-c", RESTORE_SCRIPT]
    return ["sh", "-c", FROM_FILE_SCRIPT, "lhd-restore", path, *inner]


def backups_to_remove(names: Sequence[str], keep: int) -> list[str]:
    """Return the backups beyond the `keep` newest (names sort by time)."""
    backups = sorted((name for name in names if BACKUP_NAME.match(name)), reverse=True)
    return backups[keep:]


def resolve(paths: ServerPaths, backup: str) -> str:
    """Return the absolute path of `backup`, a file name in backups/ or a path."""
    if "/" in backup:
        return backup
    return posixpath.join(paths.backups_dir, backup)


def create(remote: RemoteRunner, paths: ServerPaths, container: str, version: str):
    """Dump the database into backups/ and return the file's path."""
    path = posixpath.join(paths.backups_dir, backup_name(version))
    result = remote.run(dump_argv(container, path), hide=True, check=False)
    if not result.ok:
        remote.run(["rm", "-f", path], hide=True, check=False)
        raise LhdError(
            f"The backup before the deploy failed on {remote.host} "
            f"(pg_dump exit code {result.exited}): {result.stderr.strip()[-1000:]}\n"
            "Nothing was changed. Check the postgres service with "
            f"`fab -H {remote.host} logs postgres`."
        )
    return path


def prune(remote: RemoteRunner, paths: ServerPaths, keep: int) -> list[str]:
    names = remote.output(["ls", "-1", paths.backups_dir], what="Listing backups")
    removed = backups_to_remove(names.split(), keep)
    for name in removed:
        remote.run(
            ["rm", "-f", posixpath.join(paths.backups_dir, name)],
            hide=True,
            what=f"Removing the old backup {name}",
        )
    return removed


def restore(remote: RemoteRunner, container: str, path: str) -> None:
    if not remote.exists(path):
        raise LhdError(
            f"Backup {path} not found on {remote.host}: list them with "
            f"`ssh {remote.host} ls {posixpath.dirname(path)}`."
        )
    remote.run(restore_argv(container, path), hide=True, what=f"Restoring {path}")
