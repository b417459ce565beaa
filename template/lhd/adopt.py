"""Fit LHD into a Lucky project after `copier copy`: remove the development
Docker files that `lucky init` writes, which the files under Docker/
replace, and add what LHD needs to the project's .gitignore and
config/watch.yml, which Copier leaves as they are.

Standard library only: it runs with the Python that runs Copier.
On case-insensitive file systems `docker/` and `Docker/` are one folder, so
only Lucky's own file names are removed, never the folder as a whole.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Files of Lucky 1.x's Docker setup. The compose file is removed only while it
# still builds Lucky's dev image, so a compose file of the user's own stays.
LUCKY_DOCKER_FILES = (
    "docker/development.dockerfile",
    "docker/dev_entrypoint.sh",
    "docker/wait-for-it.sh",
)
LUCKY_COMPOSE = "docker-compose.yml"
LUCKY_COMPOSE_MARKER = "development.dockerfile"
# Ignore rules LHD needs: local settings, server secrets and task state.
GITIGNORE_LINES = (".env", ".env.production", "/.lhd/", "__pycache__/")
# Lucky's development server must listen on every interface of its
# container, on the port the Compose files publish.
WATCH_SETTINGS = {"host": "0.0.0.0", "port": "5000"}


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


def ensure_gitignore(root: Path) -> list[str]:
    """Append the ignore rules LHD needs that .gitignore lacks; return them."""
    path = root / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in GITIGNORE_LINES if line not in present]
    if missing:
        prefix = "" if not text or text.endswith("\n") else "\n"
        block = "\n# LHD: local settings, secrets and task state\n" + "\n".join(missing)
        path.write_text(text + prefix + block + "\n", encoding="utf-8")
    return missing


def ensure_watch_settings(root: Path) -> list[str]:
    """Set host and port in config/watch.yml, keeping its other keys."""
    path = root / "config" / "watch.yml"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    changed = []
    for key, value in WATCH_SETTINGS.items():
        expected = f"{key}: {value}"
        index = next(
            (i for i, line in enumerate(lines) if line.startswith(f"{key}:")), None
        )
        if index is None:
            lines.append(expected)
        elif lines[index].strip() != expected:
            lines[index] = expected
        else:
            continue
        changed.append(expected)
    if changed:
        path.parent.mkdir(exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return changed


def main() -> int:
    root = Path.cwd()
    for name in adopt(root):
        print(f"Removed {name} (replaced by the files under Docker/)")
    for line in ensure_gitignore(root):
        print(f"Added {line} to .gitignore")
    for setting in ensure_watch_settings(root):
        print(f"Set {setting} in config/watch.yml (the Compose files publish it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
