"""Connecting to the server: only known host keys, clear errors otherwise."""

from __future__ import annotations

import pytest

import sshserver
from conftest import copy_fixture_app, generate


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return generate(
        copy_fixture_app(tmp_path_factory.mktemp("connection") / "fixture_app")
    )


def output(result) -> str:
    return result.stdout + result.stderr


def test_known_host_key_connects(ssh_server, project):
    result = ssh_server.fab(project, "unlock")
    assert "known_hosts" not in output(result)
    assert "Cannot connect" not in output(result)


def test_unknown_host_key_rejected(ssh_server, project, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    result = ssh_server.fab(
        project, "unlock", env={"LHD_KNOWN_HOSTS": str(empty), "HOME": str(tmp_path)}
    )
    assert result.returncode == 1
    assert "The host key of 127.0.0.1 is not in ~/.ssh/known_hosts" in output(result)
    assert f"ssh -p {ssh_server.port} {ssh_server.user}@127.0.0.1" in output(result)


def test_changed_host_key_rejected(ssh_server, project, tmp_path):
    other = tmp_path / "other_key"
    sshserver.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other))
    wrong = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{ssh_server.port} {wrong}\n")
    result = ssh_server.fab(
        project, "unlock", env={"LHD_KNOWN_HOSTS": str(known), "HOME": str(tmp_path)}
    )
    assert result.returncode == 1
    assert "does not match the one in known_hosts" in output(result)


def test_unreachable_server_named(project, ssh_server):
    closed = sshserver.free_port()
    unreachable = sshserver.SshServer(
        closed, ssh_server.user, ssh_server.home, ssh_server.key, ssh_server.folder
    )
    result = unreachable.fab(project, "unlock")
    assert result.returncode == 1
    assert f"Cannot connect to {ssh_server.user}@127.0.0.1:{closed}" in output(result)
    assert "Check the host and port given with -H" in output(result)


def test_failed_registry_login_keeps_password_secret(ssh_server, tmp_path_factory):
    closed = sshserver.free_port()
    root = copy_fixture_app(tmp_path_factory.mktemp("login") / "login_app")
    generate(root, project_name="login_app", registry_host=f"127.0.0.1:{closed}")
    password = "wrong-password-5e1f"
    result = ssh_server.fab(
        root, "bootstrap", "--no-tls", "--registry-user", "ci", "--advertise-address", "127.0.0.1",
        env={"LHD_SEND_GRID_KEY": "SG.key", "LHD_REGISTRY_PASSWORD": password},
    )  # fmt: skip
    assert result.returncode == 1
    assert "failed" in output(result)
    assert "run bootstrap again" in output(result)
    assert f"127.0.0.1:{closed}" in output(result)
    assert password not in output(result)
