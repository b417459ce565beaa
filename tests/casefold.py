"""Serve a folder through FUSE as a case-insensitive, case-preserving file system.

Tests use it to run Copier and git with the semantics of the default file systems
of macOS (APFS and HFS+) and Windows (NTFS). Every path component matches an
existing entry regardless of case, and a new entry keeps the case it was created
with, so `docker/` and `Docker/` are one folder. The Linux kernels that the tests
run on may have neither vfat nor ext4 casefolding, but FUSE needs only `/dev/fuse`.

The server is built on mfusepy (PyPI), the maintained fork of fusepy whose ctypes
bindings load libfuse 2 or 3. This module loads libfuse 3 (Debian package `fuse3`),
tested with mfusepy 3.1.1 and libfuse 3.14. fusepy (last release 3.0.1, 2018) loads
only libfuse 2. pyfuse3 offers only the inode-based low-level API, so it would need
an inode table here.

Names match by Python's `str.casefold()`. Unlike APFS, the matching does not ignore
differences in Unicode normalization.

Linux only. Run `python tests/casefold.py BACKING MOUNTPOINT` to serve in the
foreground until unmounted, or use `case_insensitive_mount` from tests.
"""

from __future__ import annotations

import argparse
import ctypes.util
import errno
import importlib.util
import logging
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

MOUNT_TIMEOUT_SECONDS = 10.0
EXIT_TIMEOUT_SECONDS = 10.0
COMMAND_TIMEOUT_SECONDS = 10.0

# The mount's file system type in /proc/self/mountinfo is "fuse.<subtype>".
SUBTYPE = "casefold"

# Flags of renameat2(2) and markers of utimensat(2), from <linux/fs.h> and
# <sys/stat.h>. libfuse 3 passes a time of 0 s plus one of these markers.
RENAME_NOREPLACE = 1 << 0
RENAME_EXCHANGE = 1 << 1
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2

STATVFS_FIELDS = (
    "f_bsize",
    "f_frsize",
    "f_blocks",
    "f_bfree",
    "f_bavail",
    "f_files",
    "f_ffree",
    "f_favail",
    "f_flag",
    "f_namemax",
)


def find_entry(directory: str, name: str) -> str:
    """Return the name of the entry in `directory` that equals `name` ignoring case.

    Returns `name` itself when no entry matches, so that the result is where a new
    entry goes. An exact match wins. Entries that differ only in case can exist only
    when they were made outside the mount, and then the first in sorted order wins.
    """
    if os.path.lexists(os.path.join(directory, name)):
        return name
    try:
        entries = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return name
    folded = name.casefold()
    matches = sorted(entry for entry in entries if entry.casefold() == folded)
    if matches:
        return matches[0]
    return name


class CaseInsensitivePassthrough:
    """mfusepy operations that forward each request to a backing folder.

    Each operation maps its mount path to a backing path with `find_entry` and
    then calls the matching `os` function, whose OSError mfusepy returns to the
    kernel as the negative errno. Requests are served one at a time (mfusepy's
    `nothreads`), so no other request changes the backing folder between the
    lookup and the call.
    """

    # Times in integer nanoseconds, in getattr and utimens.
    use_ns = True

    def __init__(self, backing: Path) -> None:
        self.backing = str(backing)

    def backing_path(self, path: str | None) -> str:
        """Map a mount path to its backing path, matching components ignoring case."""
        if path is None:
            # libfuse passes no path for an open file whose last name was removed.
            # NOTE: so chmod, chown and utimens on such a file fail with ENOENT.
            raise FileNotFoundError(errno.ENOENT, "the file was removed while open")
        current = self.backing
        for name in path.split("/"):
            if name:
                current = os.path.join(current, find_entry(current, name))
        return current

    def split_new_path(self, path: str) -> tuple[str, str, str]:
        """Return the backing folder, the existing entry's name and the requested name.

        The existing entry's name equals the requested one when no entry matches.
        """
        parent, name = posixpath.split(path)
        folder = self.backing_path(parent)
        return folder, find_entry(folder, name), name

    # Metadata

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        if fh is not None:
            status = os.fstat(fh)
        else:
            status = os.lstat(self.backing_path(path))
        return {
            "st_mode": status.st_mode,
            "st_ino": status.st_ino,
            "st_nlink": status.st_nlink,
            "st_uid": status.st_uid,
            "st_gid": status.st_gid,
            "st_rdev": status.st_rdev,
            "st_size": status.st_size,
            "st_blksize": status.st_blksize,
            "st_blocks": status.st_blocks,
            "st_atime": status.st_atime_ns,
            "st_mtime": status.st_mtime_ns,
            "st_ctime": status.st_ctime_ns,
        }

    def access(self, path: str, amode: int) -> None:
        target = self.backing_path(path)
        os.lstat(target)
        if not os.access(target, amode):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

    def chmod(self, path: str | None, mode: int) -> None:
        os.chmod(self.backing_path(path), mode & 0o7777)

    def chown(self, path: str | None, uid: int, gid: int) -> None:
        os.chown(self.backing_path(path), uid, gid, follow_symlinks=False)

    def utimens(self, path: str | None, times: tuple[int, int] | None = None) -> None:
        target = self.backing_path(path)
        if times is None:
            os.utime(target, follow_symlinks=False)
            return
        current = os.lstat(target)
        now = time.time_ns()
        access_time = resolve_time(times[0], current.st_atime_ns, now)
        modification_time = resolve_time(times[1], current.st_mtime_ns, now)
        os.utime(target, ns=(access_time, modification_time), follow_symlinks=False)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> None:
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self.backing_path(path), length)

    def statfs(self, path: str) -> dict[str, int]:
        status = os.statvfs(self.backing_path(path))
        return {field: getattr(status, field) for field in STATVFS_FIELDS}

    # Folders and names

    def readdir(self, path: str, fh: int) -> list[tuple[str, dict[str, int], int]]:
        # Each entry needs its inode number because, with use_ino, libfuse passes
        # st_ino on to getdents(2), and glibc's readdir skips entries whose inode
        # number is 0.
        folder = self.backing_path(path)
        entries = [
            (".", os.lstat(folder)),
            ("..", os.lstat(os.path.dirname(folder))),
        ]
        with os.scandir(folder) as scan:
            for entry in scan:
                entries.append((entry.name, entry.stat(follow_symlinks=False)))
        return [
            (name, {"st_ino": status.st_ino, "st_mode": status.st_mode}, 0)
            for name, status in entries
        ]

    def mkdir(self, path: str, mode: int) -> None:
        # An entry that matches ignoring case makes os.mkdir raise EEXIST.
        os.mkdir(self.backing_path(path), mode & 0o7777)

    def rmdir(self, path: str) -> None:
        os.rmdir(self.backing_path(path))

    def mknod(self, path: str, mode: int, dev: int) -> None:
        os.mknod(self.backing_path(path), mode, dev)

    def unlink(self, path: str) -> None:
        os.unlink(self.backing_path(path))

    def symlink(self, target: str, source: str) -> None:
        """Create the symbolic link `target` whose content is `source`, like `ln -s`.

        The content is stored unchanged. The kernel resolves it through the mount,
        so it matches ignoring case too.
        """
        os.symlink(source, self.backing_path(target))

    def readlink(self, path: str) -> str:
        return os.readlink(self.backing_path(path))

    def link(self, target: str, source: str) -> None:
        """Create the hard link `target` to the existing file `source`, like `ln`."""
        os.link(self.backing_path(source), self.backing_path(target))

    def rename(self, old: str, new: str, flags: int = 0) -> None:
        """Rename `old` to `new`, which keeps the case requested in `new`.

        A case-only rename (`docker` to `Docker`) renames the entry in place. An entry
        that matches `new` ignoring case is replaced, as by rename(2), and the result
        takes the requested case.
        """
        if flags & RENAME_EXCHANGE:
            # NOTE: os has no renameat2, so exchanging two entries is not supported.
            raise OSError(errno.EINVAL, "RENAME_EXCHANGE is not supported", new)
        if flags & ~RENAME_NOREPLACE:
            raise OSError(errno.EINVAL, f"unknown rename flags {flags:#x}", new)
        source = self.backing_path(old)
        os.lstat(source)
        folder, existing_name, requested_name = self.split_new_path(new)
        existing = os.path.join(folder, existing_name)
        requested = os.path.join(folder, requested_name)
        if existing == source:
            os.rename(source, requested)
            return
        if not os.path.lexists(existing):
            os.rename(source, requested)
            return
        if flags & RENAME_NOREPLACE:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), new)
        os.rename(source, existing)
        if existing_name != requested_name:
            os.rename(existing, requested)

    # Files

    def create(self, path: str, mode: int, flags: int) -> int:
        # An entry that matches ignoring case is opened, or rejected with EEXIST
        # under O_EXCL, as on the case-insensitive file systems this mimics.
        return os.open(self.backing_path(path), flags | os.O_CREAT, mode & 0o7777)

    def open(self, path: str, flags: int) -> int:
        return os.open(self.backing_path(path), flags)

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        return os.pwrite(fh, data, offset)

    def fsync(self, path: str | None, datasync: int, fh: int) -> None:
        if datasync:
            os.fdatasync(fh)
        else:
            os.fsync(fh)

    def release(self, path: str | None, fh: int) -> None:
        os.close(fh)


def resolve_time(requested: int, current: int, now: int) -> int:
    """Return the nanosecond time to set for a utimens request of `requested`."""
    if requested == UTIME_OMIT:
        return current
    if requested == UTIME_NOW:
        return now
    return requested


def load_fuse_class() -> type:
    """Import mfusepy with libfuse 3 and return its FUSE class with two fixes.

    mfusepy 3.1.1 drops the flags of a libfuse 3 rename, so RENAME_NOREPLACE would
    replace. It also drops the file handle of a truncate, so ftruncate of an open
    file whose last name was removed would fail.
    """
    os.environ["FUSE_LIBRARY_NAME"] = "fuse3"
    import mfusepy

    class CaseFoldFUSE(mfusepy.FUSE):
        def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
            return self.operations.rename(
                old.decode(self.encoding, self.errors),
                new.decode(self.encoding, self.errors),
                flags,
            )

        def truncate_fuse_3(self, path: bytes | None, length: int, fip) -> int:
            fh = fip.contents.fh if fip else None
            decoded = None if path is None else path.decode(self.encoding, self.errors)
            return self.operations.truncate(decoded, length, fh)

    return CaseFoldFUSE


def serve(backing: Path, mountpoint: Path) -> None:
    """Mount `backing` at `mountpoint` and serve requests until it is unmounted."""
    fuse_class = load_fuse_class()
    # The kernel has already applied the caller's umask to each mode it sends.
    os.umask(0)
    logger.info("Serving %s at %s", backing, mountpoint)
    fuse_class(
        CaseInsensitivePassthrough(backing),
        str(mountpoint),
        foreground=True,
        nothreads=True,
        fsname=SUBTYPE,
        subtype=SUBTYPE,
        # Remove names of open files at once, with no .fuse_hidden files left in
        # folders that git and Copier list.
        # NOTE: so fstat(2) of an open file whose last name was removed fails with
        # ESTALE. Reads, writes and ftruncate on it still work.
        hard_remove=True,
        use_ino=True,
        # The kernel caches names and attributes per spelling, so `docker/a` and
        # `Docker/a` are two kernel inodes. With caching off, a change made through
        # one spelling shows through the other at once.
        entry_timeout=0,
        attr_timeout=0,
        negative_timeout=0,
    )
    logger.info("Unmounted %s", mountpoint)


# Mounting from tests


def check_fuse_available() -> None:
    """Raise RuntimeError naming each missing part that a FUSE mount needs."""
    missing = []
    if not sys.platform.startswith("linux"):
        missing.append(f"Linux (this is {sys.platform})")
    if not os.path.exists("/dev/fuse"):
        missing.append(
            "the device /dev/fuse (load the kernel module fuse, or give a container "
            "--device /dev/fuse)"
        )
    if ctypes.util.find_library("fuse3") is None:
        missing.append("the library libfuse3 (Debian package fuse3)")
    if importlib.util.find_spec("mfusepy") is None:
        missing.append(
            f"the Python package mfusepy for {sys.executable} (pip install mfusepy)"
        )
    if os.geteuid() != 0 and shutil.which("fusermount3") is None:
        missing.append(
            "the program fusermount3, which mounts for users other than root "
            "(Debian package fuse3)"
        )
    if missing:
        raise RuntimeError(
            "FUSE is unavailable, so no case-insensitive mount can be made. Missing: "
            + "; ".join(missing)
        )


def check_separate(backing: Path, mountpoint: Path) -> None:
    """Raise ValueError unless neither folder contains the other.

    The single-threaded server would wait on itself if it listed the mount
    while serving it.
    """
    if backing == mountpoint or mountpoint.is_relative_to(backing):
        raise ValueError(f"mount point {mountpoint} must be outside backing {backing}")
    if backing.is_relative_to(mountpoint):
        raise ValueError(f"backing {backing} must be outside mount point {mountpoint}")


def unescape_mountinfo(field: str) -> str:
    """Decode the octal escapes (`\\040` for a space) of a mountinfo field."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def is_mounted(mountpoint: Path) -> bool:
    """Return whether a casefold FUSE mount is on `mountpoint`.

    Reads /proc/self/mountinfo, which sends no request to the FUSE server, unlike
    os.path.ismount.
    """
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split()
            # Field 5 is the mount point. The file system type follows the "-" field.
            separator = fields.index("-")
            mount_path = unescape_mountinfo(fields[4])
            file_system_type = fields[separator + 1]
            if mount_path == str(mountpoint) and file_system_type == f"fuse.{SUBTYPE}":
                return True
    return False


def read_log(log_file: IO[bytes]) -> str:
    log_file.seek(0)
    return log_file.read().decode(errors="replace")


def wait_for_mount(
    mountpoint: Path, server: subprocess.Popen, log_file: IO[bytes]
) -> None:
    """Wait until the mount is live. Raise RuntimeError if the server exits first
    or the mount is not live after MOUNT_TIMEOUT_SECONDS."""
    deadline = time.monotonic() + MOUNT_TIMEOUT_SECONDS
    while not is_mounted(mountpoint):
        if server.poll() is not None:
            output = read_log(log_file)
            raise RuntimeError(
                f"casefold server for {mountpoint} exited with status "
                f"{server.returncode} before mounting. Its output:\n{output}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"casefold mount at {mountpoint} was not live after "
                f"{MOUNT_TIMEOUT_SECONDS:.0f} s. Server output:\n{read_log(log_file)}"
            )
        time.sleep(0.05)


def unmount(mountpoint: Path, lazy: bool = False) -> bool:
    """Unmount `mountpoint` and return whether the command succeeded.

    A lazy unmount detaches the mount now, even while files in it are open.
    """
    if shutil.which("fusermount3"):
        command = ["fusermount3", "-u", *(["-z"] if lazy else []), str(mountpoint)]
    else:
        command = ["umount", *(["-l"] if lazy else []), str(mountpoint)]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired:
        logger.error("Unmount of %s timed out: %s", mountpoint, " ".join(command))
        return False
    if result.returncode != 0:
        logger.warning(
            "Unmount of %s failed with status %d: %s",
            mountpoint,
            result.returncode,
            result.stderr.strip(),
        )
        return False
    return True


def stop_server(mountpoint: Path, server: subprocess.Popen) -> None:
    """Unmount `mountpoint` and wait for the server to exit, ending it if it hangs."""
    if is_mounted(mountpoint):
        # The server exits by itself once unmounted.
        if not unmount(mountpoint):
            unmount(mountpoint, lazy=True)
    elif server.poll() is None:
        # libfuse exits on SIGTERM, unmounting if it got as far as mounting.
        server.terminate()
    try:
        server.wait(timeout=EXIT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        logger.error("casefold server %d did not exit, terminating it", server.pid)
        server.terminate()
        try:
            server.wait(timeout=EXIT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            logger.error("casefold server %d did not terminate, killing it", server.pid)
            server.kill()
            server.wait()
    if is_mounted(mountpoint):
        # A killed server leaves a mount whose every access fails with ENOTCONN.
        unmount(mountpoint, lazy=True)


@contextmanager
def case_insensitive_mount(backing: Path, mountpoint: Path) -> Iterator[Path]:
    """Mount `backing` at `mountpoint` case-insensitively; unmount on exit.

    Serves the mount from a child process running this file. Unmounts and waits for
    that process on exit, also when the body raises.

    Raises RuntimeError when FUSE is unavailable, when the mount is not live within
    MOUNT_TIMEOUT_SECONDS, or when the server exits with an error.
    """
    check_fuse_available()
    backing = Path(backing).resolve(strict=True)
    mountpoint = Path(mountpoint).resolve(strict=True)
    check_separate(backing, mountpoint)
    with tempfile.TemporaryFile() as log_file:
        server = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                str(backing),
                str(mountpoint),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_mount(mountpoint, server, log_file)
            yield mountpoint
        finally:
            stop_server(mountpoint, server)
            output = read_log(log_file).strip()
            if output:
                logger.info("casefold server output:\n%s", output)
        if server.returncode != 0:
            raise RuntimeError(
                f"casefold server for {mountpoint} exited with status "
                f"{server.returncode}. Its output:\n{output}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Serve BACKING at MOUNTPOINT as a case-insensitive, "
        "case-preserving file system until it is unmounted "
        "(fusermount3 -u MOUNTPOINT)."
    )
    parser.add_argument("backing", type=Path, help="folder whose entries to serve")
    parser.add_argument("mountpoint", type=Path, help="folder to mount on")
    arguments = parser.parse_args(argv)
    backing = arguments.backing.resolve()
    mountpoint = arguments.mountpoint.resolve()
    if not backing.is_dir():
        parser.error(f"backing folder not found: {backing}")
    if not mountpoint.is_dir():
        parser.error(f"mount point folder not found: {mountpoint}")
    try:
        check_separate(backing, mountpoint)
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(
        level=logging.INFO, format="casefold %(levelname)s %(name)s: %(message)s"
    )
    serve(backing, mountpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
