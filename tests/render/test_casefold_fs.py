"""The case-insensitive FUSE mount that the render tests run Copier and git on."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

import pytest

from casefold import case_insensitive_mount, find_entry, is_mounted
from conftest import FIXTURE_APP, git


@pytest.fixture
def backing(tmp_path: Path) -> Path:
    folder = tmp_path / "backing"
    folder.mkdir()
    return folder


@pytest.fixture
def mount(tmp_path: Path, backing: Path):
    mountpoint = tmp_path / "mount"
    mountpoint.mkdir()
    with case_insensitive_mount(backing, mountpoint) as live:
        yield live
    assert not is_mounted(live)


def test_open_finds_differently_cased_path(backing, mount):
    (backing / "docker").mkdir()
    (backing / "docker" / "a").write_text("content")

    for spelling in ("docker/a", "Docker/a", "DOCKER/A"):
        with open(mount / spelling) as file:
            assert file.read() == "content", spelling


def test_stat_of_spellings_is_one_inode(backing, mount):
    (backing / "docker").mkdir()

    lower = os.stat(mount / "docker")
    upper = os.stat(mount / "Docker")

    assert lower.st_ino == upper.st_ino
    assert stat.S_ISDIR(upper.st_mode)


def test_mkdir_of_other_case_raises_eexist(backing, mount):
    (backing / "docker").mkdir()

    with pytest.raises(FileExistsError) as raised:
        os.mkdir(mount / "Docker")

    assert raised.value.errno == errno.EEXIST
    assert os.listdir(backing) == ["docker"]


def test_exclusive_create_of_other_case_raises(backing, mount):
    (backing / "compose.yml").write_text("old")

    with pytest.raises(FileExistsError):
        open(mount / "Compose.yml", "x")

    assert (backing / "compose.yml").read_text() == "old"


def test_new_file_keeps_its_case(backing, mount):
    (mount / "Docker").mkdir()
    (mount / "Docker" / "Compose.Dev.yml").write_text("services: {}\n")

    assert os.listdir(mount) == ["Docker"]
    assert os.listdir(mount / "docker") == ["Compose.Dev.yml"]
    assert (backing / "Docker" / "Compose.Dev.yml").read_text() == "services: {}\n"


def test_new_file_goes_into_existing_folder(backing, mount):
    (backing / "docker").mkdir()

    (mount / "Docker" / "x").write_text("new")
    (mount / "Docker" / "Sub").mkdir()
    (mount / "DOCKER" / "sub" / "y").write_text("deeper")

    assert os.listdir(backing) == ["docker"]
    assert (backing / "docker" / "x").read_text() == "new"
    assert (backing / "docker" / "Sub" / "y").read_text() == "deeper"


def test_rename_to_new_name(backing, mount):
    (mount / "a.txt").write_text("a")

    os.rename(mount / "a.txt", mount / "B.txt")

    assert os.listdir(mount) == ["B.txt"]
    assert (mount / "b.TXT").read_text() == "a"


def test_rename_changing_only_case(backing, mount):
    (backing / "docker").mkdir()
    (backing / "docker" / "a").write_text("a")

    os.rename(mount / "docker", mount / "Docker")

    assert os.listdir(mount) == ["Docker"]
    assert os.listdir(backing) == ["Docker"]
    assert (mount / "docker" / "a").read_text() == "a"


def test_replace_onto_other_case_replaces(backing, mount):
    (backing / "readme.md").write_text("old")
    (mount / "new.tmp").write_text("new")

    os.replace(mount / "new.tmp", mount / "README.md")

    assert os.listdir(backing) == ["README.md"]
    assert (mount / "readme.md").read_text() == "new"


def test_unlink_and_rmdir_other_case(backing, mount):
    (backing / "docker").mkdir()
    (backing / "docker" / "a").write_text("a")

    os.unlink(mount / "DOCKER" / "A")
    os.rmdir(mount / "Docker")

    assert os.listdir(backing) == []


def test_metadata_changes_reach_backing(backing, mount):
    (backing / "script.sh").write_text("#!/bin/sh\necho hello\n")

    os.chmod(mount / "Script.sh", 0o755)
    # Truncating sets the modification time, so it comes before utime.
    os.truncate(mount / "script.SH", 10)
    os.utime(mount / "SCRIPT.SH", ns=(1_000_000_000, 2_000_000_000))

    status = os.stat(backing / "script.sh")
    assert stat.S_IMODE(status.st_mode) == 0o755
    assert status.st_atime_ns == 1_000_000_000
    assert status.st_mtime_ns == 2_000_000_000
    assert status.st_size == 10


def test_symlink_resolves_ignoring_case(backing, mount):
    (backing / "docker").mkdir()
    (backing / "docker" / "a").write_text("target")

    os.symlink("Docker/A", mount / "Link")

    assert os.readlink(mount / "link") == "Docker/A"
    assert (mount / "LINK").read_text() == "target"
    assert os.readlink(backing / "Link") == "Docker/A"


def test_open_file_works_after_unlink(mount):
    with open(mount / "scratch", "w+") as file:
        file.write("abc")
        file.flush()
        os.unlink(mount / "SCRATCH")
        file.write("def")
        file.flush()
        file.seek(0)

        assert file.read() == "abcdef"
        assert os.listdir(mount) == []


def test_statvfs_reports_backing(backing, mount):
    assert os.statvfs(mount).f_bsize == os.statvfs(backing).f_bsize


def test_copytree_into_mount(tmp_path, mount):
    shutil.copytree(FIXTURE_APP, mount / "app")

    copied = sorted(
        path.relative_to(mount / "app") for path in (mount / "app").rglob("*")
    )
    original = sorted(path.relative_to(FIXTURE_APP) for path in FIXTURE_APP.rglob("*"))
    assert copied == original
    for relative in original:
        if (FIXTURE_APP / relative).is_file():
            assert (mount / "app" / relative).read_bytes() == (
                FIXTURE_APP / relative
            ).read_bytes(), relative


def test_git_commit_inside_mount(mount):
    repository = mount / "project"
    repository.mkdir()
    (repository / "docker").mkdir()
    (repository / "docker" / "Dockerfile").write_text("FROM scratch\n")

    git(repository, "init", "--quiet", "--initial-branch", "main")
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "--message", "First")

    # git probes the file system at init and records what it found.
    assert git(repository, "config", "core.ignorecase").strip() == "true"
    assert git(repository, "ls-files").splitlines() == ["docker/Dockerfile"]
    assert git(repository, "status", "--porcelain") == ""
    assert git(repository, "fsck", "--strict") == ""


def test_mount_unmounts_when_body_raises(tmp_path, backing):
    mountpoint = tmp_path / "mount"
    mountpoint.mkdir()

    with pytest.raises(KeyError):
        with case_insensitive_mount(backing, mountpoint) as live:
            assert is_mounted(live)
            raise KeyError("body failed")

    assert not is_mounted(mountpoint.resolve())


def test_mount_rejects_mountpoint_inside_backing(backing):
    mountpoint = backing / "mount"
    mountpoint.mkdir()

    with pytest.raises(ValueError, match="outside backing"):
        with case_insensitive_mount(backing, mountpoint):
            pass


@pytest.mark.parametrize(
    ("entries", "name", "expected"),
    [
        (["docker"], "Docker", "docker"),
        (["docker", "Docker"], "Docker", "Docker"),
        (["Docker", "docker"], "DOCKER", "Docker"),
        (["docker"], "compose", "compose"),
        ([], "Straße", "Straße"),
        (["strasse"], "STRASSE", "strasse"),
    ],
)
def test_find_entry_matches(tmp_path, entries, name, expected):
    for entry in entries:
        (tmp_path / entry).mkdir()

    assert find_entry(str(tmp_path), name) == expected


def test_mount_reports_server_failure(tmp_path, backing, monkeypatch):
    mountpoint = tmp_path / "mount"
    mountpoint.mkdir()
    # mfusepy loads the library at this path in place of libfuse 3.
    monkeypatch.setenv("FUSE_LIBRARY_PATH", str(tmp_path / "missing-libfuse.so"))

    with pytest.raises(RuntimeError, match="exited with status 1 before mounting"):
        with case_insensitive_mount(backing, mountpoint):
            pass

    assert not is_mounted(mountpoint.resolve())
