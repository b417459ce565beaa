"""The development and test stacks on a real Docker engine: `inv up`,
`inv test`, `inv build` and `inv down` in a project generated into the
Lucky-shaped fixture, with real Postgres and the Lucky and Hasura stand-ins.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import copy_fixture_app, free_port, generate, git

INV = str(Path(sys.executable).parent / "inv")
PROJECT = "fixture_app"
FAILING_SPEC = """\
require "./spec_helper"

describe "a failing example" do
  it "fails" do
    (1 + 1).should eq(3)
  end
end
"""
UNRELATED_COMPOSE = """\
services:
  keeper:
    image: {image}
    command: ["sleep", "infinity"]
    init: true
    volumes:
      - kept:/kept
volumes:
  kept:
"""


def inv(root: Path, *args: str, cwd: Path | None = None, stdin=subprocess.DEVNULL):
    """Run `inv` in the project like a user would, without a terminal."""
    return subprocess.run(
        [INV, *args],
        cwd=cwd or root,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def check(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (
        f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


def containers_of(client, project: str) -> dict[str, str]:
    found = client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"}
    )
    return {
        c.labels["com.docker.compose.service"]: c.id
        for c in found
        if c.labels.get("com.docker.compose.oneoff") == "False"
    }


def psql(client, query: str, database: str = f"{PROJECT}_development") -> str:
    (container,) = client.containers.list(
        filters={
            "label": [
                f"com.docker.compose.project={PROJECT}",
                "com.docker.compose.service=postgres",
            ]
        }
    )
    result = container.exec_run(
        ["psql", "-X", "-At", "-U", "postgres", "-d", database, "-c", query]
    )
    assert result.exit_code == 0, result.output.decode()
    return result.output.decode().strip()


@pytest.fixture(scope="module")
def project(tmp_path_factory, test_images, docker_engine):
    root = copy_fixture_app(tmp_path_factory.mktemp("stack") / PROJECT)
    generate(root)
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "Add LHD")

    from lhd import devenv, envfile, settings

    devenv.sync(settings.load(root))
    ports = {
        "LUCKY_PORT": free_port(),
        "HASURA_PORT": free_port(),
        "HASURA_CONSOLE_PORT": free_port(),
        "HASURA_CONSOLE_API_PORT": free_port(),
    }
    envfile.update(
        root / ".env",
        {
            "POSTGRES_IMAGE": test_images["postgres"],
            "HASURA_IMAGE": test_images["hasura"],
            "CRYSTAL_IMAGE": test_images["crystal"],
            **{name: str(port) for name, port in ports.items()},
        },
    )
    yield root, ports
    inv(root, "down", "--volumes")
    for container in docker_engine.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={PROJECT}_test"}
    ):
        container.remove(force=True, v=True)


@pytest.fixture(scope="module")
def dev_stack(project, docker_engine):
    root, ports = project
    check(inv(root, "up", "--detach"))
    psql(docker_engine, "INSERT INTO versions (version) VALUES ('dev-marker')")
    return root, ports


def test_up_serves_app_and_hasura(dev_stack):
    _, ports = dev_stack
    version = httpx.get(f"http://127.0.0.1:{ports['LUCKY_PORT']}/version", timeout=10)
    assert version.status_code == 200
    health = httpx.get(f"http://127.0.0.1:{ports['HASURA_PORT']}/healthz", timeout=10)
    assert health.status_code == 200
    hasura = httpx.get(
        f"http://127.0.0.1:{ports['HASURA_PORT']}/v1/version", timeout=10
    )
    assert hasura.status_code == 200
    assert hasura.json()["version"].startswith("v2.")


def test_seeded_version_row_in_postgres(dev_stack, docker_engine):
    _, ports = dev_stack
    rows = psql(docker_engine, "SELECT version FROM versions ORDER BY id").splitlines()
    assert rows[0] in (
        "pre-first-commit",
        git(dev_stack[0], "rev-parse", "--short=8", "HEAD").strip(),
    )
    assert psql(docker_engine, "SELECT count(*) FROM migrations") == "1"


def test_console_migration_mode_off(dev_stack):
    _, ports = dev_stack
    url = f"http://127.0.0.1:{ports['HASURA_CONSOLE_API_PORT']}/apis/migrate/settings"
    assert httpx.get(url, timeout=10).json() == {"migration_mode": "false"}
    console = httpx.get(f"http://127.0.0.1:{ports['HASURA_CONSOLE_PORT']}/", timeout=10)
    assert console.status_code == 200
    # The browser must reach Hasura and the console API on the host's ports.
    assert f"Endpoint: http://127.0.0.1:{ports['HASURA_PORT']}." in console.text
    assert (
        f"Console API: http://127.0.0.1:{ports['HASURA_CONSOLE_API_PORT']}."
        in console.text
    )


def test_env_file_private_and_ignored(dev_stack):
    root, _ = dev_stack
    assert stat.S_IMODE((root / ".env").stat().st_mode) == 0o600
    ignored = subprocess.run(
        ["git", "check-ignore", ".env"], cwd=root, capture_output=True
    )
    assert ignored.returncode == 0
    assert "Xq/4mD+9vL0e2bH7tYz1sW8kR3nP6cJ5uA==jF0gE1iK" in (root / ".env").read_text()


def test_up_again_from_subfolder_is_harmless(dev_stack, docker_engine):
    root, ports = dev_stack
    before = containers_of(docker_engine, PROJECT)
    lock_before = (root / "shard.lock").read_bytes()
    result = check(inv(root, "up", "--detach", cwd=root / "spec"))
    assert "Building the development image" not in result.stdout
    assert containers_of(docker_engine, PROJECT) == before
    assert (root / "shard.lock").read_bytes() == lock_before
    assert (
        httpx.get(
            f"http://127.0.0.1:{ports['LUCKY_PORT']}/version", timeout=10
        ).status_code
        == 200
    )
    assert (
        psql(
            docker_engine, "SELECT count(*) FROM versions WHERE version = 'dev-marker'"
        )
        == "1"
    )


def test_lock_file_copied_from_image(dev_stack):
    root, _ = dev_stack
    assert (root / "shard.lock").exists()
    assert "version: 2.0" in (root / "shard.lock").read_text()


def test_specs_pass_beside_dev_stack(dev_stack, docker_engine):
    root, _ = dev_stack
    before = containers_of(docker_engine, PROJECT)
    result = inv(root, "test", "--", "spec/version_spec.cr")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failures" in result.stdout
    assert containers_of(docker_engine, PROJECT) == before
    assert containers_of(docker_engine, f"{PROJECT}_test") == {}


def test_failing_spec_exit_code_without_terminal(dev_stack, docker_engine):
    root, _ = dev_stack
    (root / "spec" / "failing_spec.cr").write_text(FAILING_SPEC)
    try:
        # Standard input is a pipe here, not a terminal and not /dev/null.
        result = inv(root, "test", "--", "spec/failing_spec.cr", stdin=subprocess.PIPE)
    finally:
        (root / "spec" / "failing_spec.cr").unlink()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failures" in result.stdout or "1 failure" in result.stdout
    assert "Specs exited with code 1" in result.stderr + result.stdout
    assert containers_of(docker_engine, f"{PROJECT}_test") == {}
    assert not docker_engine.volumes.list(
        filters={"label": f"com.docker.compose.project={PROJECT}_test"}
    )


def test_dev_database_untouched_by_tests(dev_stack, docker_engine):
    assert (
        psql(
            docker_engine, "SELECT count(*) FROM versions WHERE version = 'dev-marker'"
        )
        == "1"
    )
    databases = psql(
        docker_engine, "SELECT datname FROM pg_database", database="postgres"
    ).split()
    assert f"{PROJECT}_development" in databases
    assert f"{PROJECT}_test" not in databases


def test_postgres_health_check_logs_no_errors(dev_stack, docker_engine):
    (container,) = docker_engine.containers.list(
        filters={
            "label": [
                f"com.docker.compose.project={PROJECT}",
                "com.docker.compose.service=postgres",
            ]
        }
    )
    assert container.attrs["State"]["Health"]["Status"] == "healthy"
    assert "does not exist" not in container.logs().decode()


def test_build_then_test_production_image(dev_stack, docker_engine):
    root, _ = dev_stack
    from lhd import envfile

    envfile.update(root / ".env", {"CRYSTAL_BUILD_FLAGS": "--no-debug"})
    # inv up wrote shard.lock from the image; the image must match a commit.
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "Add shard.lock")
    tag = git(root, "rev-parse", "--short=8", "HEAD").strip()
    check(inv(root, "build"))
    image = docker_engine.images.get(
        f"registry.gitlab.com/fixture-app/fixture-app/lucky:{tag}"
    )
    assert image.attrs["Config"]["User"] == "lucky"
    result = inv(root, "test", "--image", tag, "--", "spec/version_spec.cr")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failures" in result.stdout

    # The programs compiled from Docker/lucky/*.cr with the real compiler.
    stamp = docker_engine.containers.run(image.id, ["bin/last_migration"], remove=True)
    assert stamp.decode().strip() == "20240101000000"
    unhealthy = subprocess.run(
        ["docker", "run", "--rm", image.id, "bin/healthcheck"],
        capture_output=True,
        text=True,
    )
    assert unhealthy.returncode == 1
    assert "healthcheck: http://127.0.0.1:5000/version" in unhealthy.stderr


def test_shell_reads_commands_from_pipe(dev_stack, docker_engine):
    root, _ = dev_stack
    result = subprocess.run(
        [INV, "test", "--shell"],
        cwd=root,
        input="echo shell-env=$LUCKY_ENV\nexit 0\n",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "shell-env=test" in result.stdout
    assert containers_of(docker_engine, f"{PROJECT}_test") == {}


def test_down_spares_other_projects(dev_stack, docker_engine, test_images, tmp_path):
    root, _ = dev_stack
    (tmp_path / "compose.yml").write_text(
        UNRELATED_COMPOSE.format(image=test_images["debian"])
    )
    unrelated = [
        "docker",
        "compose",
        "--project-name",
        "lhdtest_unrelated",
        "--file",
        str(tmp_path / "compose.yml"),
    ]
    subprocess.run([*unrelated, "up", "--detach"], check=True, capture_output=True)
    dangling = docker_engine.volumes.create("lhdtest_dangling")
    lucky = docker_engine.containers.get(containers_of(docker_engine, PROJECT)["lucky"])
    anonymous = [m["Name"] for m in lucky.attrs["Mounts"] if m["Type"] == "volume"]
    assert len(anonymous) == 3
    try:
        check(inv(root, "down"))
        assert containers_of(docker_engine, PROJECT) == {}
        assert docker_engine.volumes.get(f"{PROJECT}_data")
        names = {volume.name for volume in docker_engine.volumes.list()}
        assert not names & set(anonymous), (
            "the app container's anonymous volumes remain"
        )

        check(inv(root, "down", "--volumes"))
        names = {volume.name for volume in docker_engine.volumes.list()}
        assert f"{PROJECT}_data" not in names
        assert "lhdtest_unrelated_kept" in names
        assert "lhdtest_dangling" in names
        (keeper,) = docker_engine.containers.list(
            filters={"label": "com.docker.compose.project=lhdtest_unrelated"}
        )
        assert keeper.status == "running"
    finally:
        subprocess.run(
            [*unrelated, "down", "--volumes", "--timeout", "1"], capture_output=True
        )
        dangling.remove(force=True)
