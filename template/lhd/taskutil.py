"""Helpers every task uses: error reporting, signals, the runner and settings."""

from __future__ import annotations

import functools
import signal

from invoke import Exit

from lhd.errors import LhdError

INTERRUPTED = (
    "Interrupted. Containers that were started keep running: run the task "
    "again to finish, or `inv down` to remove them."
)
SERVER_INTERRUPTED = (
    "Interrupted. The deploy lock, if this task took it, was released; a "
    "command already running on the server may still finish. Check with "
    "`fab status` and run the task again."
)
# Signals that end a task the way Ctrl-C does, so its cleanup still runs:
# SIGTERM from a CI runner cancelling a job, SIGHUP from a closed terminal.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """Raised on SIGTERM or SIGHUP; a KeyboardInterrupt so cleanup handles both."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_number)
        self.signal_number = signal_number


def raise_stopped(signal_number, frame) -> None:
    raise Stopped(signal_number)


def reported(function, interrupted: str = INTERRUPTED):
    """Report LhdError as one line with exit code 1, and interruptions with 128+N.

    While the task runs, SIGTERM and SIGHUP raise Stopped, so `finally`
    blocks (such as the removal of the test stack) run for them as well.
    `interrupted` is the message printed on an interruption.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        previous = {
            number: signal.signal(number, raise_stopped) for number in STOP_SIGNALS
        }
        try:
            return function(*args, **kwargs)
        except LhdError as error:
            from lhd import ui

            ui.error(str(error))
            raise Exit(code=1) from None
        except Stopped as stopped:
            raise Exit(interrupted, code=128 + stopped.signal_number) from None
        except KeyboardInterrupt:
            raise Exit(interrupted, code=128 + signal.SIGINT) from None
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    return wrapper


def reported_on_server(function):
    """`reported` for tasks on a server, with advice that fits them."""
    return reported(function, SERVER_INTERRUPTED)


def context_objects(c):
    """Return the runner for Invoke context `c` and the project's settings."""
    from lhd import settings
    from lhd.runner import Runner

    return Runner(c), settings.load()


def positive_seconds(value, option: str) -> float:
    """Return `value` as seconds, or raise LhdError naming the option."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if seconds <= 0:
        raise LhdError(f"--{option} {value!r} is not a positive number of seconds.")
    return seconds
