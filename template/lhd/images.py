"""The development image: rebuilt only when its inputs change, and the
production image, tagged with the commit it was built from."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from lhd import engine, ui
from lhd.compose import Compose
from lhd.errors import LhdError
from lhd.runner import Runner
from lhd.settings import Settings

# Files whose change means the development image must be rebuilt: the shard
# files are installed into the image, the Dockerfile defines it.
DEV_INPUTS = ("shard.yml", "shard.lock", "Docker/lucky/Dockerfile", ".dockerignore")
APP_DIR = "/home/lucky/app"
STATE_FILE = "dev-image.json"


def inputs_digest(settings: Settings, build_args: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in DEV_INPUTS:
        path = settings.root / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.exists() else b"(missing)")
        digest.update(b"\0")
    digest.update(json.dumps(build_args, sort_keys=True).encode())
    return digest.hexdigest()


def image_id(reference: str) -> str | None:
    from docker.errors import ImageNotFound

    try:
        return engine.client().images.get(reference).id
    except ImageNotFound:
        return None


def ensure_dev_image(
    runner: Runner,
    compose: Compose,
    settings: Settings,
    build_args: dict[str, str],
    force: bool = False,
) -> bool:
    """Build the development image when its inputs changed; return True if built."""
    state_path = settings.state_dir / STATE_FILE
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        state = {}
    digest = inputs_digest(settings, build_args)
    current = image_id(settings.dev_image)
    if not force and current and state == {"digest": digest, "image": current}:
        return False

    if force:
        reason = "requested"
    elif current:
        reason = "its inputs changed"
    else:
        reason = "it is missing"
    ui.step(f"Building the development image {settings.dev_image} ({reason})")
    runner.run(compose.build(["lucky"]), what="Building the development image")
    copy_lock_file(settings)

    settings.state_dir.mkdir(exist_ok=True)
    state = {
        "digest": inputs_digest(settings, build_args),
        "image": image_id(settings.dev_image),
    }
    state_path.write_text(json.dumps(state) + "\n", encoding="utf-8")
    return True


def copy_lock_file(settings: Settings) -> None:
    """Copy `shard.lock` out of the development image when it differs."""
    from docker.errors import ContainerError

    try:
        content = engine.client().containers.run(
            settings.dev_image,
            ["cat", f"{APP_DIR}/shard.lock"],
            entrypoint=[],
            remove=True,
        )
    except ContainerError:
        ui.warn(
            f"The image {settings.dev_image} has no shard.lock; kept the local one."
        )
        return
    local = settings.root / "shard.lock"
    if not local.exists() or local.read_bytes() != content:
        local.write_bytes(content)
        ui.done("Updated shard.lock from the development image")


def commit_tag(root: Path) -> str:
    """Return the 8-character SHA of HEAD, the tag of production images."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short=8", "--verify", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as error:
        raise LhdError("git not found: install git to tag images by commit.") from error
    if result.returncode != 0:
        detail = result.stderr.strip()
        problem = (
            "is not a git repository"
            if "not a git repository" in detail
            else "has no git commit yet"
        )
        raise LhdError(
            f"Cannot tag the image: {root} {problem} ({detail}). "
            "Commit first, or pass --tag."
        )
    return result.stdout.strip()


def clean_commit_tag(root: Path) -> str:
    """Return the commit tag of HEAD, refusing a work tree with changes.

    An image tagged with a commit must contain that commit: built from
    uncommitted changes, it would be deployed as something it is not.
    """
    tag = commit_tag(root)
    result = subprocess.run(
        ["git", "status", "--porcelain"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    changed = [line[3:] for line in result.stdout.splitlines() if line.strip()]
    if changed:
        listed = ", ".join(changed[:5]) + (
            f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        )
        raise LhdError(
            f"The work tree has changes that commit {tag} does not contain "
            f"({listed}). Commit them, or pass --tag to name the image yourself."
        )
    return tag


def build_production_argv(
    settings: Settings,
    tag: str,
    build_args: dict[str, str],
    cache_from: str | None = None,
) -> list[str]:
    argv = [
        "docker",
        "build",
        "--file",
        str(settings.compose_dir / "lucky" / "Dockerfile.prod"),
    ]
    argv += ["--tag", f"{settings.registry_image}:{tag}"]
    for name, value in sorted(build_args.items()):
        argv += ["--build-arg", f"{name}={value}"]
    if cache_from:
        # BuildKit reuses layers of a cache image only when it was built with
        # inline cache metadata; the classic builder ignores the argument.
        argv += ["--cache-from", cache_from]
    argv += ["--build-arg", "BUILDKIT_INLINE_CACHE=1"]
    return [*argv, str(settings.root)]


def image_reference(settings: Settings, tag_or_reference: str) -> str:
    """Expand a bare tag to the project's registry image; keep full references."""
    if ":" in tag_or_reference or "/" in tag_or_reference:
        return tag_or_reference
    return f"{settings.registry_image}:{tag_or_reference}"
