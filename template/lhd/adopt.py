"""Remove the development Docker files that `lucky init` writes, which the
files under Docker/ replace. Copier runs this once after `copier copy`.

Standard library only: it runs with the Python that runs Copier.
On case-insensitive file systems `docker/` and `Docker/` are one folder, so
only Lucky's own file names are removed, never the folder as a whole.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Files of Lucky 1.x's Docker setup; the compose file is removed only when it
# still builds Lucky's dev image, so a compose file of the user's own stays.
LUCKY_DOCKER_FILES = (
    "docker/development.dockerfile",
    "docker/dev_entrypoint.sh",
    "docker/wait-for-it.sh",
)
LUCKY_COMPOSE = "docker-compose.yml"
LUCKY_COMPOSE_MARKER = "development.dockerfile"


def adopt(root: Path) -> list[str]:
    """Remove Lucky's dev Docker files under `root`; return the removed paths."""
    removed = []
    compose = root / LUCKY_COMPOSE
    if compose.is_file() and LUCKY_COMPOSE_MARKER in compose.read_text(
        errors="replace"
    ):
        compose.unlink()
        removed.append(LUCKY_COMPOSE)
    for name in LUCKY_DOCKER_FILES:
        path = root / name
        if path.is_file():
            path.unlink()
            removed.append(name)
    folder = root / "docker"
    # On a case-sensitive file system this is Lucky's own folder; remove it
    # once empty. On a case-insensitive one it is Docker/ and is not empty.
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    return removed


def main() -> int:
    removed = adopt(Path.cwd())
    for name in removed:
        print(f"Removed {name} (replaced by the files under Docker/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
