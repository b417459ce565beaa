"""The project's git history, read locally: versions to deploy, image tags
and the release archive."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from lhd import audit
from lhd.errors import LhdError

# Image tags are the 8-character abbreviation `inv build` uses.
TAG_LENGTH = 8
# Folders of a commit a release needs on the server.
RELEASE_PATHS = ("Docker", "db/hasura")


def git_argv(root: Path, *args: str) -> list[str]:
    return ["git", "-C", str(root), *args]


def run_git(root: Path, *args: str, binary: bool = False):
    argv = git_argv(root, *args)
    audit.record("local", argv)
    try:
        result = subprocess.run(argv, capture_output=True, check=False)
    except FileNotFoundError as error:
        raise LhdError("git not found: install git to deploy by commit.") from error
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace").strip()
        raise LhdError(f"`{' '.join(argv)}` failed: {stderr}")
    return result.stdout if binary else result.stdout.decode("utf-8").strip()


def resolve(root: Path, version: str = "HEAD") -> str:
    """Return the full SHA of the commit `version` names, or raise LhdError."""
    argv = git_argv(root, "rev-parse", "--verify", "--quiet", f"{version}^{{commit}}")
    audit.record("local", argv)
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LhdError(
            f"{version!r} is not a commit of {root}: give a commit SHA, tag or "
            "branch that `git log` shows (fetch first if it is only on a remote)."
        )
    return result.stdout.strip()


def short(root: Path, sha: str) -> str:
    return run_git(root, "rev-parse", f"--short={TAG_LENGTH}", sha)


def recent_tags(root: Path, sha: str, count: int) -> list[str]:
    """Return the image tags of `sha` and its first-parent ancestors, newest first."""
    output = run_git(
        root,
        "log",
        "--first-parent",
        f"--max-count={count}",
        f"--abbrev={TAG_LENGTH}",
        "--format=%h",
        sha,
    )
    return output.split()


def present_paths(root: Path, sha: str, paths: Sequence[str]) -> list[str]:
    """Return the entries of `paths` that exist in commit `sha`."""
    output = run_git(root, "ls-tree", "--name-only", sha, "--", *paths)
    return [path for path in paths if path in output.splitlines()]


def archive(root: Path, sha: str) -> bytes:
    """Return a tar archive of the release folders of commit `sha`."""
    paths = present_paths(root, sha, RELEASE_PATHS)
    if "Docker" not in paths:
        raise LhdError(
            f"Commit {sha[:TAG_LENGTH]} has no Docker/ folder: deploy a commit "
            "made after the LHD files were added."
        )
    return run_git(root, "archive", "--format=tar", sha, "--", *paths, binary=True)
