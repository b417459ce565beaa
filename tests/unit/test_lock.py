"""The deploy lock: acquisition, refusal messages and release on errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fakeremote import FakeRemote
from lhd import lock
from lhd.errors import LhdError
from lhd.server import ServerPaths

PATHS = ServerPaths(home="/home/deploy", stack="shop")


def test_owner_record_fields():
    record = lock.owner_record("0123abcd", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert record["since"] == "2030-01-02T03:04:05Z"
    assert record["version"] == "0123abcd"
    assert record["user"]
    assert record["host"]


def test_refusal_names_holder_and_since():
    owner = {
        "user": "ana",
        "host": "laptop",
        "since": "2030-01-02T03:04:05Z",
        "version": "0123abcd",
    }
    message = lock.refusal_message(owner, PATHS, "server.test")
    assert "ana@laptop" in message
    assert "since 2030-01-02T03:04:05Z" in message
    assert "deploying 0123abcd" in message
    assert "fab -H server.test unlock" in message


def test_refusal_without_owner_file():
    message = lock.refusal_message(None, PATHS, "server.test")
    assert "unknown owner" in message
    assert PATHS.lock_dir in message


def test_acquire_writes_owner():
    remote = FakeRemote("shop")
    lock.acquire(remote, PATHS, "0123abcd")
    assert remote.calls[0] == ["mkdir", PATHS.lock_dir]
    assert json.loads(remote.files[PATHS.lock_owner])["version"] == "0123abcd"


def test_acquire_refused_when_held():
    remote = FakeRemote("shop", failing={"mkdir"})
    remote.files[PATHS.lock_owner] = json.dumps(
        {
            "user": "ana",
            "host": "laptop",
            "since": "2030-01-02T03:04:05Z",
            "version": "x",
        }
    ).encode()
    with pytest.raises(LhdError, match="ana@laptop since 2030-01-02T03:04:05Z"):
        lock.acquire(remote, PATHS, "0123abcd")


@pytest.mark.parametrize("error", [LhdError("step failed"), KeyboardInterrupt()])
def test_held_releases_on_error_and_interrupt(error):
    remote = FakeRemote("shop")
    with pytest.raises(type(error)):
        with lock.held(remote, PATHS, "0123abcd"):
            raise error
    assert remote.calls[-1] == ["rm", "-rf", PATHS.lock_dir]
