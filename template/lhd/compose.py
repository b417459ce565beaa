"""Builders for `docker compose` command lines.

Each method returns an argument list; nothing here runs a command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEV_FILES = ("compose.yml", "compose.dev.yml")
TEST_FILES = ("compose.yml", "compose.test.yml")
IMAGE_OVERRIDE = "compose.image.yml"


@dataclass(frozen=True)
class Compose:
    """One Compose project: its name, files and the `.env` it reads."""

    command: tuple[str, ...]
    project: str
    files: tuple[Path, ...]
    env_file: Path

    def base(self) -> list[str]:
        # Compose reads `.env` from the folder of the first file (Docker/),
        # so the project root's `.env` is passed explicitly.
        argv = [*self.command, "--project-name", self.project]
        argv += ["--env-file", str(self.env_file)]
        for path in self.files:
            argv += ["--file", str(path)]
        return argv

    def build(self, services: Sequence[str] = (), pull: bool = False) -> list[str]:
        return [*self.base(), "build", *(["--pull"] if pull else []), *services]

    def up(
        self,
        services: Sequence[str] = (),
        renew_anon_volumes: bool = False,
        wait: bool = False,
        no_deps: bool = False,
    ) -> list[str]:
        argv = [*self.base(), "up", "--detach", "--no-build", "--remove-orphans"]
        if renew_anon_volumes:
            argv.append("--renew-anon-volumes")
        if no_deps:
            argv.append("--no-deps")
        if wait:
            argv.append("--wait")
        return [*argv, *services]

    def run(
        self,
        service: str,
        command: Sequence[str],
        tty: bool,
        no_deps: bool = True,
        env: Sequence[str] = (),
    ) -> list[str]:
        argv = [*self.base(), "run", "--rm"]
        if no_deps:
            argv.append("--no-deps")
        if not tty:
            argv.append("-T")
        for name in env:
            argv += ["--env", name]
        return [*argv, service, *command]

    def exec(
        self, service: str, command: Sequence[str], tty: bool, detach: bool = False
    ) -> list[str]:
        argv = [*self.base(), "exec"]
        if detach:
            argv.append("--detach")
        if not tty:
            argv.append("-T")
        return [*argv, service, *command]

    def logs(
        self, services: Sequence[str] = (), follow: bool = False, tail: str = "all"
    ) -> list[str]:
        argv = [*self.base(), "logs", "--tail", tail]
        if follow:
            argv.append("--follow")
        return [*argv, *services]

    def remove_containers(self) -> list[str]:
        # `rm --volumes` removes the anonymous volumes of the containers, such
        # as the shard folders of the lucky service, but no named volume.
        return [*self.base(), "rm", "--stop", "--force", "--volumes"]

    def down(self, volumes: bool = False) -> list[str]:
        argv = [*self.base(), "down", "--remove-orphans"]
        if volumes:
            argv.append("--volumes")
        return argv

    def ps(self) -> list[str]:
        return [*self.base(), "ps", "--all", "--format", "json"]

    def config(self) -> list[str]:
        return [*self.base(), "config"]


def project_files(compose_dir: Path, names: Sequence[str]) -> tuple[Path, ...]:
    return tuple(compose_dir / name for name in names)
