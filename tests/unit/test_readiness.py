import time

import pytest

from lhd import readiness
from lhd.errors import LhdError


def test_returns_once_check_passes():
    calls = []

    def check():
        calls.append(1)
        if len(calls) < 3:
            raise readiness.NotReady("not yet")

    waited = readiness.wait_for(check, "thing", timeout=5, interval=0.01)
    assert len(calls) == 3
    assert waited < 1


def test_timeout_names_what_reason_and_diagnostics():
    def check():
        raise readiness.NotReady("port closed")

    started = time.monotonic()
    with pytest.raises(LhdError) as raised:
        readiness.wait_for(
            check,
            "hasura at http://x/healthz",
            timeout=0.2,
            interval=0.05,
            diagnostics=lambda: "last logs",
        )
    assert time.monotonic() - started < 2
    message = str(raised.value)
    assert "Timed out after 0 s waiting for hasura at http://x/healthz" in message
    assert "port closed" in message
    assert message.endswith("last logs")


def test_failed_stops_at_once():
    def check():
        raise readiness.Failed("container exited with code 1")

    with pytest.raises(LhdError, match="thing failed: container exited with code 1"):
        readiness.wait_for(check, "thing", timeout=60)
