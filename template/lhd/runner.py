"""Run command lines built elsewhere, locally through an Invoke context.

Argument lists are joined with `shlex.join`, so no value reaches the shell
unquoted.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from lhd.errors import LhdError

# Exit code of a command stopped by SIGINT (128 + 2), as shells report it.
INTERRUPTED_EXIT_CODE = 130
# Seconds an interrupted command gets to stop before it is killed; Compose
# stops the container of `compose run` within that.
INTERRUPT_GRACE_SECONDS = 15


@dataclass(frozen=True)
class Completed:
    """The result of an attached command; its output went to the terminal."""

    exited: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.exited == 0


def failure_message(
    argv: Sequence[str], result, hide: bool, what: str | None, host: str | None = None
) -> str:
    """Return the message for a failed command: what failed, where, and why."""
    where = f" on {host}" if host else ""
    detail = f": {result.stderr.strip()[-2000:]}" if hide and result.stderr else ""
    return (
        f"{what or 'Command'} failed{where} with exit code {result.exited}{detail}\n"
        f"  command: {shlex.join(argv)}"
    )


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


class Runner:
    """Runs argument lists through an Invoke (or Fabric) context."""

    def __init__(self, context) -> None:
        self.context = context

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        hide: bool = False,
        interactive: bool = False,
        what: str | None = None,
    ):
        """Run `argv`; raise LhdError naming `what` when it fails and `check`.

        An interactive command gets this process's terminal or standard
        input as it is, and Ctrl-C reaches it directly.
        """
        if interactive:
            result = self.run_attached(argv)
        else:
            result = self.context.run(
                shlex.join(argv), warn=True, hide=hide, in_stream=False
            )
        if result.exited == INTERRUPTED_EXIT_CODE:
            # Invoke passes Ctrl-C on to the command and returns its result
            # instead of raising, so the interruption is raised here.
            raise KeyboardInterrupt
        if check and not result.ok:
            raise LhdError(failure_message(argv, result, hide, what))
        return result

    def run_attached(self, argv: Sequence[str]) -> Completed:
        """Run `argv` in this process group with inherited standard streams.

        Ctrl-C goes to the whole foreground process group, so the command
        (and through Compose, the container) gets it too. This process then
        waits for the command to stop before it raises KeyboardInterrupt.
        """
        if self.context.config.run.echo:
            print(shlex.join(argv), flush=True)
        process = subprocess.Popen(list(argv))
        try:
            exit_code = process.wait()
        except KeyboardInterrupt as interruption:
            if getattr(interruption, "signal_number", None) is not None:
                # SIGTERM or SIGHUP reached this process alone; stop the
                # command the way Ctrl-C would have.
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=INTERRUPT_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            raise
        if exit_code < 0:
            # Popen reports a command killed by a signal as minus its number.
            exit_code = 128 - exit_code
        return Completed(exited=exit_code)

    def output(self, argv: Sequence[str], what: str | None = None) -> str:
        """Run `argv` quietly and return its standard output."""
        return self.run(argv, hide=True, what=what).stdout
