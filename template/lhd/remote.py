"""Run command lines built elsewhere on the server, through a Fabric connection.

The interface matches `lhd.runner.Runner` (run, output), plus standard
input for commands such as `docker login --password-stdin` and file
transfer over SFTP. Argument lists are joined with `shlex.join`, so no
value reaches the remote shell unquoted.
"""

from __future__ import annotations

import io
import posixpath
import shlex
from collections.abc import Sequence

from lhd import audit
from lhd.errors import LhdError
from lhd.runner import failure_message, stdin_is_terminal

# Loads a dotenv file into the environment of one command. The file path
# and the command are positional parameters, so no value of the file is
# ever part of a command line.
ENV_FILE_SCRIPT = 'set -a && . "$1" && set +a && shift && exec "$@"'


def with_env_file(
    env_file: str, argv: Sequence[str], extra: dict[str, str] | None = None
) -> list[str]:
    """Return `argv` wrapped so it runs with the variables of `env_file`.

    `extra` contains values that are not secret (such as LUCKY_IMAGE); they
    are set with `env NAME=value` and so appear on the command line.
    """
    assignments = [f"{name}={value}" for name, value in (extra or {}).items()]
    prefix = ["env", *assignments] if assignments else []
    return ["sh", "-c", ENV_FILE_SCRIPT, "lhd-env", env_file, *prefix, *argv]


# A known_hosts file read besides ~/.ssh/known_hosts, for CI jobs and tests.
KNOWN_HOSTS_VARIABLE = "LHD_KNOWN_HOSTS"
CONNECT_TIMEOUT = 20  # seconds, unless ssh_config or -t sets another


def open_verified(connection) -> None:
    """Open the SSH connection, accepting only a host key that known_hosts lists.

    Fabric accepts any host key by default; a deploy that sends secrets and
    database dumps must know whom it talks to. Connection failures become
    LhdError with what to check.
    """
    import os

    from paramiko import RejectPolicy
    from paramiko.ssh_exception import (
        AuthenticationException,
        BadHostKeyException,
        SSHException,
    )

    client = connection.client
    client.load_system_host_keys()
    extra = os.environ.get(KNOWN_HOSTS_VARIABLE)
    if extra:
        try:
            client.load_host_keys(extra)
        except OSError as error:
            raise LhdError(
                f"{KNOWN_HOSTS_VARIABLE}={extra}: {error.strerror}."
            ) from error
    client.set_missing_host_key_policy(RejectPolicy())
    connection.connect_timeout = connection.connect_timeout or CONNECT_TIMEOUT
    address = f"{connection.user}@{connection.host}:{connection.port}"
    try:
        connection.open()
    except BadHostKeyException as error:
        raise LhdError(
            f"The host key of {connection.host} does not match the one in "
            "known_hosts: the server was reinstalled, or someone is in between. "
            "Check the fingerprint with the server's administrator before you "
            f"replace the line (`ssh-keygen -R {connection.host}`)."
        ) from error
    except AuthenticationException as error:
        raise LhdError(
            f"{address} rejected the SSH login ({error}). Check the user in -H "
            "and the key (-i, or your ssh-agent)."
        ) from error
    except SSHException as error:
        if "known_hosts" not in str(error):
            raise LhdError(f"SSH to {address} failed: {error}") from error
        raise LhdError(
            f"The host key of {connection.host} is not in ~/.ssh/known_hosts "
            f"(or the file in {KNOWN_HOSTS_VARIABLE}), so the server cannot be "
            f"verified. Connect once with `ssh -p {connection.port} "
            f"{connection.user}@{connection.host}` and check the fingerprint it "
            "shows, then run this again."
        ) from error
    except OSError as error:
        raise LhdError(
            f"Cannot connect to {address}: {error}. Check the host and port "
            "given with -H, that sshd runs there and that no firewall blocks "
            "the port."
        ) from error


class RemoteRunner:
    """Runs argument lists on the server of a Fabric connection."""

    def __init__(self, connection) -> None:
        self.connection = connection

    @property
    def host(self) -> str:
        """The server as given with -H, user and port included, for messages."""
        return getattr(self.connection, "original_host", None) or self.connection.host

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        hide: bool = False,
        interactive: bool = False,
        what: str | None = None,
        stdin: str | None = None,
    ):
        """Run `argv` on the server; raise LhdError naming `what` when it fails.

        `stdin` is sent as the command's standard input, which is then
        closed, so secrets can reach a command without a command line.
        """
        audit.record(self.host, argv)
        terminal = interactive and stdin is None and stdin_is_terminal()
        if stdin is not None:
            in_stream = io.StringIO(stdin)
        else:
            in_stream = None if interactive else False
        result = self.connection.run(
            shlex.join(argv), warn=True, hide=hide, pty=terminal, in_stream=in_stream
        )
        if check and not result.ok:
            raise LhdError(failure_message(argv, result, hide, what, self.host))
        return result

    def output(self, argv: Sequence[str], what: str | None = None) -> str:
        """Run `argv` quietly and return its standard output."""
        return self.run(argv, hide=True, what=what).stdout

    def succeeds(self, argv: Sequence[str]) -> bool:
        """Run `argv` quietly and return whether it exited 0."""
        return self.run(argv, hide=True, check=False).ok

    def get(self, path: str) -> bytes:
        """Return the content of the server file `path` (over SFTP)."""
        buffer = io.BytesIO()
        try:
            self.connection.get(path, local=buffer)
        except FileNotFoundError as error:
            raise LhdError(f"{path} not found on {self.host}.") from error
        except PermissionError as error:
            raise LhdError(
                f"{path} on {self.host} is not readable by the SSH user."
            ) from error
        return buffer.getvalue()

    def exists(self, path: str) -> bool:
        return self.succeeds(["test", "-e", path])

    def put(self, content: bytes, path: str, private: bool = False) -> None:
        """Write `content` to the server file `path`, replacing it atomically.

        With `private` the file has mode 0600 from its creation on, so its
        content is never readable by others, not even for a moment.
        """
        temporary = posixpath.join(
            posixpath.dirname(path), f".{posixpath.basename(path)}.lhd-upload"
        )
        mode = "600" if private else "644"
        self.run(
            ["install", "-m", mode, "/dev/null", temporary],
            hide=True,
            what=f"Creating {temporary}",
        )
        self.connection.put(io.BytesIO(content), remote=temporary)
        self.run(["mv", "-f", temporary, path], hide=True, what=f"Writing {path}")
