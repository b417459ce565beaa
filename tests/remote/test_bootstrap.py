"""Production tasks over a real SSH connection: `fab bootstrap`, the deploy
lock, `fab unlock` and the check of `.env.production`, against a throwaway
sshd on loopback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from conftest import copy_fixture_app, generate, git

SEND_GRID_KEY = "SG.remote-test-key-4c1d"
BOOTSTRAP = (
    "bootstrap",
    "--no-tls",
    "--skip-login",
    "--advertise-address",
    "127.0.0.1",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = copy_fixture_app(tmp_path_factory.mktemp("remote") / "fixture_app")
    generate(root)
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "Add LHD")
    return root


def env_path(ssh_server):
    return ssh_server.home / "fixture_app" / ".env.production"


def read_env(ssh_server) -> dict[str, str]:
    from lhd import envfile

    return envfile.read(env_path(ssh_server))


def text(result) -> str:
    return result.stdout + result.stderr


def check(result):
    assert result.returncode == 0, (
        f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


def as_server_user(ssh_server, path):
    shutil.chown(path, ssh_server.user, ssh_server.user)


@pytest.fixture(scope="module")
def bootstrapped(project, ssh_server):
    env = {"LHD_SEND_GRID_KEY": SEND_GRID_KEY}
    first = check(ssh_server.fab(project, *BOOTSTRAP, env=env))
    return first, read_env(ssh_server)


def test_bootstrap_writes_private_env_file(bootstrapped, ssh_server):
    mode = stat.S_IMODE(env_path(ssh_server).stat().st_mode)
    assert mode == 0o600


def test_bootstrap_creates_folders(bootstrapped, ssh_server):
    root = ssh_server.home / "fixture_app"
    for name in ("data/postgres", "certs", "releases", "backups"):
        assert (root / name).is_dir(), name


def test_bootstrap_generates_every_value(bootstrapped):
    from lhd import prodenv

    _, values = bootstrapped
    missing = [key for key in prodenv.REQUIRED_KEYS if not values.get(key)]
    assert missing == []
    assert values["SEND_GRID_KEY"] == SEND_GRID_KEY
    assert values["TLS"] == "false"
    assert values["APP_DOMAIN"] == "fixture-app.localhost"


def test_second_bootstrap_changes_nothing(bootstrapped, project, ssh_server):
    _, values = bootstrapped
    before = env_path(ssh_server).read_bytes()
    second = check(ssh_server.fab(project, *BOOTSTRAP))
    assert "is complete" in text(second)
    assert env_path(ssh_server).read_bytes() == before
    assert read_env(ssh_server) == values
    assert stat.S_IMODE(env_path(ssh_server).stat().st_mode) == 0o600


def test_bootstrap_prints_no_secret(bootstrapped):
    from lhd import prodenv

    first, values = bootstrapped
    output = first.stdout + first.stderr
    leaked = [key for key in prodenv.SECRET_KEYS if values[key] in output]
    assert leaked == []


def test_swarm_is_active_after_bootstrap(bootstrapped, docker_engine):
    assert docker_engine.info()["Swarm"]["LocalNodeState"] == "active"


def test_missing_value_without_terminal_names_variable(tmp_path_factory, ssh_server):
    root = copy_fixture_app(tmp_path_factory.mktemp("remote-other") / "other_app")
    generate(root, project_name="other_app")
    result = ssh_server.fab(root, *BOOTSTRAP, env={"LHD_SEND_GRID_KEY": ""})
    assert result.returncode == 1
    assert "LHD_SEND_GRID_KEY" in text(result)
    assert "no terminal" in text(result)
    shutil.rmtree(ssh_server.home / "other_app", ignore_errors=True)


def test_tls_without_certificates_names_paths(bootstrapped, project, ssh_server):
    result = ssh_server.fab(project, "bootstrap", "--tls", "--skip-login")
    certs = ssh_server.home / "fixture_app" / "certs"
    assert result.returncode == 1
    assert f"{certs}/cert.pem and {certs}/key.pem" in text(result)
    assert "openssl req -x509" in text(result)
    check(ssh_server.fab(project, *BOOTSTRAP))
    assert read_env(ssh_server)["TLS"] == "false"


def test_lock_refusal_names_holder_and_since(bootstrapped, project, ssh_server):
    lock = ssh_server.home / "fixture_app" / "deploy.lock"
    lock.mkdir()
    owner = {
        "user": "ana",
        "host": "laptop",
        "since": "2030-01-02T03:04:05Z",
        "version": "0123abcd",
    }
    (lock / "owner.json").write_text(json.dumps(owner))
    as_server_user(ssh_server, lock)
    as_server_user(ssh_server, lock / "owner.json")
    try:
        result = ssh_server.fab(project, "deploy", "HEAD", "--subtractive")
        assert result.returncode == 1
        assert "ana@laptop since 2030-01-02T03:04:05Z" in text(result)
        assert "deploying 0123abcd" in text(result)
        assert lock.is_dir()

        refused = ssh_server.fab(project, "unlock")
        assert refused.returncode == 1
        assert "give --yes" in text(refused)
        assert "ana@laptop since 2030-01-02T03:04:05Z" in text(refused)
        assert lock.is_dir()

        unlocked = check(ssh_server.fab(project, "unlock", "--yes"))
        assert "held by ana@laptop" in text(unlocked)
        assert not lock.exists()
    finally:
        shutil.rmtree(lock, ignore_errors=True)


def test_bootstrap_keeps_existing_database_credentials(
    bootstrapped, project, ssh_server
):
    path = env_path(ssh_server)
    original = path.read_bytes()
    data = ssh_server.home / "fixture_app" / "data" / "postgres" / "PG_VERSION"
    data.write_text("18\n")
    lines = [
        line
        for line in original.decode().splitlines()
        if not line.startswith("POSTGRES_PASSWORD=")
    ]
    path.write_text("\n".join(lines) + "\n")
    try:
        result = ssh_server.fab(
            project, *BOOTSTRAP, env={"LHD_SEND_GRID_KEY": SEND_GRID_KEY}
        )
        assert result.returncode == 1
        assert "has no value for POSTGRES_PASSWORD" in text(result)
        assert "already holds a database" in text(result)
        assert "POSTGRES_PASSWORD=" not in path.read_text()
    finally:
        data.unlink()
        path.write_bytes(original)


def test_unlock_without_lock(bootstrapped, project, ssh_server):
    result = check(ssh_server.fab(project, "unlock"))
    assert "No deploy lock" in text(result)


def test_missing_env_value_is_named(bootstrapped, project, ssh_server):
    path = env_path(ssh_server)
    original = path.read_bytes()
    lines = [
        line
        for line in original.decode().splitlines()
        if not line.startswith("SECRET_KEY_BASE=")
    ]
    path.write_text("\n".join(lines) + "\n")
    try:
        result = ssh_server.fab(project, "deploy", "HEAD", "--subtractive")
        assert result.returncode == 1
        assert "has no value for SECRET_KEY_BASE" in text(result)
        assert "bootstrap" in text(result)
        assert not (ssh_server.home / "fixture_app" / "deploy.lock").exists()
    finally:
        path.write_bytes(original)


def test_deploy_unknown_version_is_rejected(bootstrapped, project, ssh_server):
    result = ssh_server.fab(project, "deploy", "no-such-commit", "--subtractive")
    assert result.returncode == 1
    assert "'no-such-commit' is not a commit" in text(result)


def test_task_without_host_names_option(project):
    fab = os.path.join(os.path.dirname(sys.executable), "fab")
    result = subprocess.run(
        [fab, "status"], cwd=project, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "name it with -H" in text(result)


def test_interrupted_deploy_releases_lock(tmp_path_factory, ssh_server):
    """Ctrl-C during a step that hangs (an image pull from a registry that
    accepts connections and never replies) stops fab and frees the lock."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    root = copy_fixture_app(tmp_path_factory.mktemp("remote-interrupt") / "stuck_app")
    generate(root, project_name="stuck_app", registry_host=f"127.0.0.1:{port}")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "Add LHD")
    audit = root.parent / "audit.jsonl"
    env = {"LHD_SEND_GRID_KEY": SEND_GRID_KEY, "LHD_AUDIT_LOG": str(audit)}
    lock = ssh_server.home / "stuck_app" / "deploy.lock"
    try:
        check(ssh_server.fab(root, *BOOTSTRAP, env=env))
        fab = os.path.join(os.path.dirname(sys.executable), "fab")
        deploy = subprocess.Popen(
            [
                fab,
                "-H",
                ssh_server.host,
                "-i",
                str(ssh_server.key),
                "deploy",
                "HEAD",
                "--subtractive",
            ],
            cwd=root,
            env={**os.environ, "LHD_KNOWN_HOSTS": str(ssh_server.known_hosts), **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if audit.exists() and '"pull"' in audit.read_text():
                break
            time.sleep(0.1)
        assert lock.is_dir()
        time.sleep(1)
        deploy.send_signal(signal.SIGINT)
        output, _ = deploy.communicate(timeout=60)
        assert deploy.returncode == 130, output
        assert "Interrupted" in output
        assert not lock.exists()
    finally:
        listener.close()
        shutil.rmtree(ssh_server.home / "stuck_app", ignore_errors=True)


def test_htpasswd_reads_password_from_stdin(project):
    from passlib.hash import apr_md5_crypt

    fab = os.path.join(os.path.dirname(sys.executable), "fab")
    result = subprocess.run(
        [fab, "htpasswd", "admin", "--scheme", "apr1"],
        cwd=project,
        input="s3cret-pass\n",
        capture_output=True,
        text=True,
    )
    check(result)
    file_line = next(
        line for line in result.stdout.splitlines() if line.startswith("htpasswd file:")
    )
    label_line = next(
        line for line in result.stdout.splitlines() if line.startswith("compose label:")
    )
    entry = file_line.split(":", 1)[1].strip()
    user, hashed = entry.split(":", 1)
    assert user == "admin"
    assert apr_md5_crypt.verify("s3cret-pass", hashed)
    assert label_line.split(":", 1)[1].strip() == entry.replace("$", "$$")
    assert "s3cret-pass" not in result.stdout


def test_restore_of_missing_backup_changes_nothing(bootstrapped, project, ssh_server):
    result = ssh_server.fab(project, "restore", "nosuch.dump", "--yes")
    assert result.returncode == 1
    assert "nosuch.dump not found" in text(result)
    assert "nothing was changed" in text(result)
    assert "Stopping" not in text(result)


def test_logs_of_unknown_service(project):
    fab = os.path.join(os.path.dirname(sys.executable), "fab")
    result = subprocess.run(
        [fab, "logs", "nosuch"], cwd=project, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "Unknown service 'nosuch'" in text(result)
