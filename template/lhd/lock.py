"""The deploy lock: a folder on the server that `mkdir` creates atomically.

`owner.json` inside it records who holds the lock (user, host, since,
version), so a refused deploy can say whom to wait for.
"""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from lhd.errors import LhdError
from lhd.remote import RemoteRunner
from lhd.server import ServerPaths


def owner_record(version: str, now: datetime | None = None) -> dict[str, str]:
    """Return the owner record of a lock taken here, now, for `version`."""
    return {
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "since": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "version": version,
    }


def acquire_argv(paths: ServerPaths) -> list[str]:
    return ["mkdir", paths.lock_dir]


def release_argv(paths: ServerPaths) -> list[str]:
    return ["rm", "-rf", paths.lock_dir]


def refusal_message(owner: dict[str, str] | None, paths: ServerPaths, host: str) -> str:
    if owner is None:
        holder = "an unknown owner (the lock has no readable owner.json)"
    else:
        holder = (
            f"{owner.get('user', '?')}@{owner.get('host', '?')} since "
            f"{owner.get('since', '?')} (deploying {owner.get('version', '?')})"
        )
    return (
        f"Another deploy holds the lock {paths.lock_dir} on {host}: {holder}. "
        f"Wait for it to finish; if it died, remove the lock with "
        f"`fab -H {host} unlock`."
    )


def read_owner(remote: RemoteRunner, paths: ServerPaths) -> dict[str, str] | None:
    try:
        return json.loads(remote.get(paths.lock_owner))
    except (LhdError, ValueError):
        return None


def acquire(remote: RemoteRunner, paths: ServerPaths, version: str) -> None:
    """Take the lock, or raise LhdError naming its holder."""
    if not remote.succeeds(acquire_argv(paths)):
        raise LhdError(refusal_message(read_owner(remote, paths), paths, remote.host))
    record = json.dumps(owner_record(version), indent=2) + "\n"
    remote.put(record.encode(), paths.lock_owner)


def release(remote: RemoteRunner, paths: ServerPaths) -> None:
    remote.run(release_argv(paths), hide=True, what="Removing the deploy lock")


@contextmanager
def held(remote: RemoteRunner, paths: ServerPaths, version: str) -> Iterator[None]:
    """Hold the lock for the block; release it on success, error and Ctrl-C."""
    from lhd.dev import interrupts_deferred

    acquire(remote, paths, version)
    try:
        yield
    # NOTE: Fabric runs commands without a pty, so Ctrl-C stops fab but not a
    # remote command already running (a migration, say). The lock is freed
    # while that command may still finish on the server.
    finally:
        with interrupts_deferred():
            release(remote, paths)
