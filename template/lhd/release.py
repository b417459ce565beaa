"""Release folders on the server: upload, the `current` symlink, retention."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from lhd import commits
from lhd.errors import LhdError
from lhd.remote import RemoteRunner
from lhd.server import ServerPaths

KEEP_RELEASES = 5


def extract_argv(archive_path: str, release_dir: str) -> list[str]:
    return ["tar", "-x", "-f", archive_path, "-C", release_dir]


def link_argv(release_dir: str, current: str) -> list[str]:
    # `ln -sfn` replaces the link itself, never a folder it points to.
    return ["ln", "-sfn", release_dir, current]


def list_argv(paths: ServerPaths) -> list[str]:
    # Newest first by modification time, one name per line.
    return ["ls", "-1t", paths.releases_dir]


def releases_to_remove(
    names: Sequence[str], keep: int, protected: Sequence[str]
) -> list[str]:
    """Return the releases beyond the `keep` newest, never one in `protected`."""
    kept = 0
    removed = []
    for name in names:
        if name in protected:
            continue
        if kept < keep:
            kept += 1
        else:
            removed.append(name)
    return removed


def upload(remote: RemoteRunner, paths: ServerPaths, root, sha: str, version: str):
    """Upload the release folders of commit `sha` to releases/<version>/."""
    content = commits.archive(root, sha)
    release_dir = paths.release_dir(version)
    archive_path = f"{release_dir}.tar"
    remote.run(["mkdir", "-p", release_dir], hide=True, what="Creating the release")
    remote.put(content, archive_path)
    remote.run(
        extract_argv(archive_path, release_dir),
        hide=True,
        what=f"Extracting {archive_path}",
    )
    remote.run(["rm", "-f", archive_path], hide=True, what="Removing the archive")
    return release_dir


def write_record(
    remote: RemoteRunner, paths: ServerPaths, version: str, image: str
) -> None:
    record = {
        "version": version,
        "image": image,
        "uploaded": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    remote.put(
        (json.dumps(record, indent=2) + "\n").encode(), paths.release_record(version)
    )


def read_record(remote: RemoteRunner, paths: ServerPaths, version: str) -> dict | None:
    if not remote.exists(paths.release_record(version)):
        return None
    try:
        return json.loads(remote.get(paths.release_record(version)))
    except ValueError as error:
        raise LhdError(
            f"{paths.release_record(version)} on {remote.host} is not valid JSON: "
            f"{error}"
        ) from error


def current_version(remote: RemoteRunner, paths: ServerPaths) -> str | None:
    """Return the version the `current` symlink points to, or None."""
    result = remote.run(["readlink", paths.current], hide=True, check=False)
    if not result.ok or not result.stdout.strip():
        return None
    return result.stdout.strip().rstrip("/").rsplit("/", 1)[-1]


def switch(remote: RemoteRunner, paths: ServerPaths, version: str) -> None:
    remote.run(
        link_argv(paths.release_dir(version), paths.current),
        hide=True,
        what="Pointing current at the new release",
    )


def prune(remote: RemoteRunner, paths: ServerPaths, keep: int, protected) -> list[str]:
    names = remote.output(list_argv(paths), what="Listing releases").split()
    names = [name for name in names if not name.endswith(".tar")]
    removed = releases_to_remove(names, keep, protected)
    for name in removed:
        remote.run(
            ["rm", "-rf", paths.release_dir(name)],
            hide=True,
            what=f"Removing the old release {name}",
        )
    return removed
