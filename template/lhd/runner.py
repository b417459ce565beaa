"""Run command lines built elsewhere, locally through an Invoke context.

Argument lists are joined with `shlex.join`, so no value reaches the shell
unquoted.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence

from lhd.errors import LhdError


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
        """Run `argv`; raise LhdError naming `what` when it fails and `check`."""
        terminal = interactive and stdin_is_terminal()
        result = self.context.run(
            shlex.join(argv),
            warn=True,
            hide=hide,
            pty=terminal,
            in_stream=None if interactive else False,
        )
        if check and not result.ok:
            detail = (
                f": {result.stderr.strip()[-2000:]}" if hide and result.stderr else ""
            )
            raise LhdError(
                f"{what or 'Command'} failed with exit code {result.exited}{detail}\n"
                f"  command: {shlex.join(argv)}"
            )
        return result

    def output(self, argv: Sequence[str], what: str | None = None) -> str:
        """Run `argv` quietly and return its standard output."""
        return self.run(argv, hide=True, what=what).stdout
