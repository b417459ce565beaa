"""Paths of one stack on the server, below the SSH user's home folder.

The layout, relative to the home folder:

    <stack>/.env.production          secrets and settings, mode 0600
    <stack>/data/postgres            bind-mounted at /var/lib/postgresql
    <stack>/certs/cert.pem, key.pem  the TLS pair when TLS is true
    <stack>/releases/<sha8>/         Docker/ and db/hasura/ of that commit
    <stack>/current                  symlink to the deployed release
    <stack>/backups/<UTC>-<sha8>.dump
    <stack>/deploy.lock/owner.json   present while a deploy runs
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

# Written into each release folder: the version and image it was deployed with.
RELEASE_RECORD = "lhd-release.json"


@dataclass(frozen=True)
class ServerPaths:
    """Absolute paths of one stack's files on the server."""

    home: str
    stack: str

    @property
    def root(self) -> str:
        return posixpath.join(self.home, self.stack)

    @property
    def env_file(self) -> str:
        return posixpath.join(self.root, ".env.production")

    @property
    def data_dir(self) -> str:
        return posixpath.join(self.root, "data")

    @property
    def postgres_dir(self) -> str:
        return posixpath.join(self.data_dir, "postgres")

    @property
    def certs_dir(self) -> str:
        return posixpath.join(self.root, "certs")

    @property
    def cert_file(self) -> str:
        return posixpath.join(self.certs_dir, "cert.pem")

    @property
    def key_file(self) -> str:
        return posixpath.join(self.certs_dir, "key.pem")

    @property
    def releases_dir(self) -> str:
        return posixpath.join(self.root, "releases")

    def release_dir(self, version: str) -> str:
        return posixpath.join(self.releases_dir, version)

    def release_record(self, version: str) -> str:
        return posixpath.join(self.release_dir(version), RELEASE_RECORD)

    @property
    def current(self) -> str:
        return posixpath.join(self.root, "current")

    @property
    def backups_dir(self) -> str:
        return posixpath.join(self.root, "backups")

    @property
    def lock_dir(self) -> str:
        return posixpath.join(self.root, "deploy.lock")

    @property
    def lock_owner(self) -> str:
        return posixpath.join(self.lock_dir, "owner.json")

    def folders(self) -> tuple[str, ...]:
        """Return the folders bootstrap creates, parents first."""
        return (
            self.root,
            self.data_dir,
            self.postgres_dir,
            self.certs_dir,
            self.releases_dir,
            self.backups_dir,
        )


def home_argv() -> list[str]:
    return ["printenv", "HOME"]


def locate(remote, stack: str) -> ServerPaths:
    """Return the paths of `stack` below the SSH user's home folder on the server."""
    from lhd.errors import LhdError

    home = remote.output(home_argv(), what="Reading the home folder").strip()
    if not home.startswith("/"):
        raise LhdError(
            f"The SSH user on {remote.host} has no absolute HOME folder ({home!r})."
        )
    return ServerPaths(home=home, stack=stack)
