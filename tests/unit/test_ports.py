import socket

import pytest

from lhd import ports
from lhd.errors import LhdError


@pytest.fixture
def no_containers(monkeypatch):
    monkeypatch.setattr(ports, "published_by", lambda project: set())


def test_taken_port_names_setting(no_containers):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {"BIND_ADDRESS": "127.0.0.1", "LUCKY_PORT": str(port)}
        with pytest.raises(LhdError) as raised:
            ports.check_free(env, "demo", {"LUCKY_PORT": 5000})
    message = str(raised.value)
    assert f"Port {port} on 127.0.0.1 (LUCKY_PORT in .env) is not available" in message
    assert "set LUCKY_PORT to a free port" in message


def test_own_published_port_counts_as_free(monkeypatch):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        monkeypatch.setattr(ports, "published_by", lambda project: {port})
        ports.check_free({"LUCKY_PORT": str(port)}, "demo", {"LUCKY_PORT": 5000})


def test_free_port_passes(no_containers):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ports.check_free({"HASURA_PORT": str(port)}, "demo", {"HASURA_PORT": 8080})


def test_empty_test_port_is_skipped(no_containers):
    ports.check_free({"LUCKY_TEST_PORT": ""}, "demo", ports.TEST_PORTS)


@pytest.mark.parametrize("value", ["abc", "0", "70000", "-1"])
def test_invalid_port_rejected(no_containers, value):
    with pytest.raises(
        LhdError, match=f"LUCKY_PORT='{value}' in .env is not a port number"
    ):
        ports.check_free({"LUCKY_PORT": value}, "demo", {"LUCKY_PORT": 5000})


def test_port_in_time_wait_counts_as_free(no_containers):
    server = socket.socket()
    # Like docker-proxy, whose Go listener sets SO_REUSEADDR: Linux lets a
    # port be bound again over TIME_WAIT only when both sockets set it.
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    # The server side closes first, so its end of the connection, on the
    # listening port, stays in TIME_WAIT after the listener is gone.
    accepted.close()
    client.close()
    server.close()
    ports.check_free({"HASURA_PORT": str(port)}, "demo", {"HASURA_PORT": 8080})
