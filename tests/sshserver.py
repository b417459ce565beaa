"""A throwaway OpenSSH server on loopback for the remote and stack tests.

Runs Debian's `sshd` as root on a free 127.0.0.1 port with a temporary
config, a host key and a user key made for the run, and a system user
`lhdtest-deploy` (home in a temporary folder, member of the docker group)
that Fabric logs in as. Everything is removed when the server stops.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
USER = "lhdtest-deploy"
START_TIMEOUT = 10.0  # seconds for sshd to accept connections

CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {folder}/host_ed25519
PidFile {folder}/sshd.pid
AuthorizedKeysFile {folder}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
# The temporary folders below /tmp are not in a chain of root-owned
# folders, which StrictModes requires.
StrictModes no
UsePAM no
AllowUsers {user}
Subsystem sftp internal-sftp
"""


@dataclass
class SshServer:
    port: int
    user: str
    home: Path
    key: Path
    folder: Path

    @property
    def host(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    @property
    def known_hosts(self) -> Path:
        """The known_hosts file with this server's key, for LHD_KNOWN_HOSTS."""
        return self.folder / "known_hosts"

    def fab(self, project: Path, *args: str, env=None, timeout=900, stdin=None):
        """Run `fab -H <this server> ARGS` in `project`, without a terminal."""
        import sys

        fab = str(Path(sys.executable).parent / "fab")
        return subprocess.run(
            [fab, "-H", self.host, "-i", str(self.key), *args],
            cwd=project,
            env={
                **os.environ,
                "LHD_KNOWN_HOSTS": str(self.known_hosts),
                **(env or {}),
            },
            stdin=subprocess.DEVNULL if stdin is None else None,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


def remove_user() -> None:
    subprocess.run(["userdel", "--force", USER], capture_output=True, check=False)


def start() -> tuple[SshServer, subprocess.Popen]:
    if not Path(SSHD).exists():
        pytest.fail(
            f"{SSHD} not found: install it with `apt-get install openssh-server`.",
            pytrace=False,
        )
    if os.geteuid() != 0:
        pytest.fail("The remote tests run sshd and create a user: run them as root.")
    folder = Path(tempfile.mkdtemp(prefix="lhdtest-ssh-"))
    folder.chmod(0o755)
    home = folder / "home"
    remove_user()
    run(
        "useradd", "--create-home", "--home-dir", str(home), "--groups", "docker",
        "--shell", "/bin/sh", USER,
    )  # fmt: skip
    # useradd locks the password with "!", and sshd without PAM refuses
    # locked accounts even for key logins; "*" means "no password" instead.
    run("usermod", "--password", "*", USER)
    run(
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-f",
        str(folder / "host_ed25519"),
    )
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "user_key"))
    shutil.copy(folder / "user_key.pub", folder / "authorized_keys")
    port = free_port()
    # Fabric's tasks accept only known host keys; `fab` reads this file
    # through LHD_KNOWN_HOSTS.
    host_key = (folder / "host_ed25519.pub").read_text().split()[:2]
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_key)}\n")
    config = folder / "sshd_config"
    config.write_text(CONFIG.format(port=port, folder=folder, user=USER))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "sshd.log", "w"),  # noqa: SIM115 - closed with the process
    )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log = (folder / "sshd.log").read_text()
                stop(process, folder)
                pytest.fail(f"sshd did not start on port {port}:\n{log}", pytrace=False)
            time.sleep(0.1)
    return SshServer(port, USER, home, folder / "user_key", folder), process


def stop(process: subprocess.Popen, folder: Path) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    remove_user()
    shutil.rmtree(folder, ignore_errors=True)
