"""Wait on facts: poll a check at a short interval until it passes or a
deadline runs out, and name what was waited on when it does not."""

from __future__ import annotations

import time
from collections.abc import Callable

from lhd import ui
from lhd.errors import LhdError

POLL_INTERVAL = 0.1  # seconds between checks


class NotReady(Exception):
    """Raised by a check that has not passed yet, with the reason as its message."""


class Failed(Exception):
    """Raised by a check that can never pass, such as an exited container."""


def wait_for(
    check: Callable[[], None],
    what: str,
    timeout: float,
    diagnostics: Callable[[], str] | None = None,
    interval: float = POLL_INTERVAL,
) -> float:
    """Call `check` until it returns without raising NotReady; return seconds waited.

    Raises LhdError naming `what`, the time waited, the last reason and the
    output of `diagnostics` (such as a service's last log lines) when the
    deadline passes or the check raises Failed.
    """
    started = time.monotonic()
    deadline = started + timeout
    reason = "no check completed"
    with ui.status(f"Waiting for {what}"):
        while True:
            try:
                check()
                return time.monotonic() - started
            except NotReady as error:
                reason = str(error)
            except Failed as error:
                raise LhdError(
                    _message(f"{what} failed: {error}", diagnostics)
                ) from error
            if time.monotonic() >= deadline:
                waited = time.monotonic() - started
                raise LhdError(
                    _message(
                        f"Timed out after {waited:.0f} s waiting for {what} "
                        f"(last check: {reason}).",
                        diagnostics,
                    )
                )
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def _message(headline: str, diagnostics: Callable[[], str] | None) -> str:
    if diagnostics is None:
        return headline
    try:
        detail = diagnostics().rstrip()
    except Exception as error:  # noqa: BLE001 - diagnostics must not hide the headline
        detail = f"(could not collect diagnostics: {error})"
    return f"{headline}\n{detail}" if detail else headline


def http_ok(url: str) -> Callable[[], None]:
    """Return a check that passes when GET `url` returns status 200."""
    import httpx

    def check() -> None:
        try:
            response = httpx.get(url, timeout=2.0)
        except httpx.HTTPError as error:
            raise NotReady(f"{url}: {error.__class__.__name__}") from error
        if response.status_code != 200:
            raise NotReady(f"{url} returned status {response.status_code}")

    return check
