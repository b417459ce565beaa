"""`fab bootstrap`, `fab deploy` and `fab rollback` end to end: a generated
project deploys through a throwaway sshd on loopback to the local engine
as a single-node swarm, with its Lucky image pushed to a real registry
(Debian's docker-registry) on 127.0.0.1, and real Postgres, Traefik and
socket proxy beside the Lucky and Hasura stand-ins.

The tests run in file order on one server: bootstrap, first deploy, an
additive deploy under load, a refused concurrent deploy, a deploy that
swarm rolls back, a rollback to the first version and a restore. Every
command line the tasks ran (LHD_AUDIT_LOG) and every command line seen on
the machine meanwhile (/proc/*/cmdline) is checked for secrets at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

import sshserver
from conftest import copy_fixture_app, generate, git

STACK = "lhdtest_deploy"
DOMAIN = "fixture-app.localhost"
API_HOST = f"api.{DOMAIN}"
REGISTRY_USER = "lhdtest"
SEND_GRID_KEY = "SG.stack-test-key-7f3e9a"
INV = str(Path(sys.executable).parent / "inv")
TIMEOUT = "400"
DEPLOY_OPTIONS = ("--resolve-image", "never", "--timeout", TIMEOUT)
# The fixture app serves the newest row of `versions`; re-inserting the
# seeded version makes it the newest, so /version follows the last seed,
# as an app that reports its own build would.
REQUIRED_DATA = """\
DELETE FROM versions WHERE version = :'app_version';
INSERT INTO versions (version) VALUES (:'app_version');
"""
ADD_COLUMN = """\
-- +up
ALTER TABLE versions ADD COLUMN note text;

-- +down
ALTER TABLE versions DROP COLUMN note;
"""
UNHEALTHY = """\
FROM {base}
RUN printf '#!/bin/sh\\necho unhealthy on purpose >&2\\nexit 1\\n' > bin/healthcheck \\
    && chmod +x bin/healthcheck
"""
REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {folder}/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
auth:
  htpasswd:
    realm: lhdtest
    path: {folder}/htpasswd
"""


def run(argv, **options) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, **options)
    assert result.returncode == 0, (
        f"{argv} exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


class CommandLines:
    """Collects the command line of every process on the machine, every 50 ms."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def sample(self) -> None:
        while not self.stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    raw = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if raw:
                    self.seen.add(raw.replace(b"\0", b" ").decode("utf-8", "replace"))
            time.sleep(0.05)


class Server:
    """The test server: sshd, registry, project and what the tests recorded."""

    def __init__(self, ssh, project: Path, registry: str, folder: Path) -> None:
        self.ssh = ssh
        self.project = project
        self.registry = registry
        self.folder = folder
        self.audit_log = folder / "audit.jsonl"
        self.outputs: list[str] = []
        self.versions: dict[str, str] = {}
        self.http_port = sshserver.free_port()
        self.https_port = sshserver.free_port()
        self.password = ""

    @property
    def root(self) -> Path:
        return self.ssh.home / STACK

    @property
    def env_file(self) -> Path:
        return self.root / ".env.production"

    def fab(self, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        env = {
            "LHD_AUDIT_LOG": str(self.audit_log),
            "LHD_REGISTRY_PASSWORD": self.password,
            "LHD_SEND_GRID_KEY": SEND_GRID_KEY,
            # Wide enough that rich prints table cells on one line.
            "COLUMNS": "200",
        }
        result = self.ssh.fab(self.project, *args, env=env, timeout=timeout)
        self.outputs.append(result.stdout + result.stderr)
        return result

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def get_version(self) -> str:
        response = httpx.get(
            self.url("/version"), headers={"Host": API_HOST}, timeout=5
        )
        assert response.status_code == 200, response.text
        return response.json()["version"]

    def wait_for_version(self, version: str, timeout: float = 60) -> None:
        """Poll /version until it returns `version`; Traefik routes to new
        services only after its next poll of swarm and health check."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                last = self.get_version()
                if last == version:
                    return
            except (AssertionError, httpx.HTTPError) as error:
                last = str(error)
            time.sleep(0.5)
        pytest.fail(f"/version never returned {version}; last: {last}")

    def env_values(self) -> dict[str, str]:
        from lhd import envfile

        return envfile.read(self.env_file)

    def psql(self, query: str) -> str:
        import docker

        values = self.env_values()
        client = docker.from_env()
        (container,) = client.containers.list(
            filters={"label": f"com.docker.swarm.service.name={STACK}_postgres"}
        )
        result = container.exec_run(
            [
                "psql",
                "-X",
                "-At",
                "-U",
                values["POSTGRES_USER"],
                "-d",
                values["POSTGRES_DB"],
                "-c",
                query,
            ]
        )
        assert result.exit_code == 0, result.output.decode()
        return result.output.decode().strip()


def check(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (
        f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


def text(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def ensure_swarm(client) -> None:
    if client.info()["Swarm"]["LocalNodeState"] != "active":
        run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"])


def remove_stack(client) -> None:
    subprocess.run(["docker", "stack", "rm", STACK], capture_output=True, timeout=120)
    label = f"com.docker.stack.namespace={STACK}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        containers = client.containers.list(all=True, filters={"label": label})
        networks = client.networks.list(filters={"label": label})
        if not containers and not networks:
            return
        time.sleep(2)


def start_registry(folder: Path, password: str):
    from lhd import htpasswd

    if shutil.which("docker-registry") is None:
        pytest.fail(
            "docker-registry not found: `apt-get install docker-registry`.",
            pytrace=False,
        )
    port = sshserver.free_port()
    (folder / "htpasswd").write_text(htpasswd.entry(REGISTRY_USER, password) + "\n")
    (folder / "config.yml").write_text(REGISTRY_CONFIG.format(folder=folder, port=port))
    process = subprocess.Popen(
        ["docker-registry", "serve", str(folder / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "registry.log", "w"),  # noqa: SIM115 - closed with the process
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 401:
                return process, f"127.0.0.1:{port}"
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(
                f"docker-registry did not start:\n{(folder / 'registry.log').read_text()}"
            )
        time.sleep(0.2)


def build_and_push(server: Server, docker_config: Path) -> str:
    """Build the production image of HEAD with `inv build` and push it."""
    tag = git(server.project, "rev-parse", "--short=8", "HEAD").strip()
    run([INV, "build"], cwd=server.project, timeout=1500)
    image = f"{server.registry}/lhdtest/fixture-app/lucky:{tag}"
    run(
        ["docker", "--config", str(docker_config), "push", "--quiet", image],
        timeout=600,
    )
    return tag


def commit(project: Path, message: str) -> str:
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", message)
    return git(project, "rev-parse", "--short=8", "HEAD").strip()


def image_id(client, reference: str) -> str:
    return client.images.get(reference).id


@pytest.fixture(scope="module")
def server(tmp_path_factory, test_images, docker_engine):
    import secrets

    from lhd import devenv, envfile, settings

    ensure_swarm(docker_engine)
    remove_stack(docker_engine)
    sampler = CommandLines()
    sampler.thread.start()
    folder = Path(tempfile.mkdtemp(prefix="lhdtest-deploy-"))
    password = secrets.token_urlsafe(18)
    registry_process, registry = start_registry(folder, password)
    docker_config = folder / "docker-config"
    docker_config.mkdir()
    run(
        [
            "docker",
            "--config",
            str(docker_config),
            "login",
            "--username",
            REGISTRY_USER,
            "--password-stdin",
            registry,
        ],
        input=password,
    )
    ssh, ssh_process = sshserver.start()
    project = copy_fixture_app(tmp_path_factory.mktemp("deploy") / "fixture_app")
    generate(
        project,
        registry_host=registry,
        registry_namespace="lhdtest",
        registry_repository="fixture-app",
        stack_name=STACK,
        app_domain=DOMAIN,
    )
    (project / "db" / "seeds" / "required_data.sql").write_text(REQUIRED_DATA)
    (project / ".git" / "info" / "exclude").write_text(".env\n.lhd/\n")
    test_server = Server(ssh, project, registry, folder)
    test_server.password = password
    test_server.sampler = sampler
    test_server.docker_config = docker_config
    references = []
    try:
        test_server.versions["one"] = commit(project, "Add LHD")
        devenv.sync(settings.load(project))
        envfile.update(
            project / ".env",
            {
                "CRYSTAL_IMAGE": test_images["crystal"],
                "CRYSTAL_BUILD_FLAGS": "--no-debug",
            },
        )
        references.append(build_and_push(test_server, docker_config))
        yield test_server
    finally:
        sampler.stop.set()
        sampler.thread.join()
        remove_stack(docker_engine)
        sshserver.stop(ssh_process, ssh.folder)
        registry_process.terminate()
        registry_process.wait(timeout=20)
        for tag in test_server.versions.values():
            subprocess.run(
                ["docker", "rmi", f"{registry}/lhdtest/fixture-app/lucky:{tag}"],
                capture_output=True,
            )
        shutil.rmtree(folder, ignore_errors=True)


def test_bootstrap_twice(server, test_images, docker_engine):
    options = ("bootstrap", "--no-tls", "--registry-user", REGISTRY_USER)
    check(server.fab(*options))
    first = server.env_values()
    second = check(server.fab(*options))
    assert "is complete" in text(second)
    assert server.env_values() == first
    assert oct(server.env_file.stat().st_mode & 0o777) == "0o600"
    assert (server.ssh.home / ".docker" / "config.json").is_file()

    # Test images exist only on this engine: reference them by ID so no
    # task tries a registry pull, and publish Traefik on free ports.
    from lhd import envfile

    overrides = {
        "POSTGRES_IMAGE": image_id(docker_engine, test_images["postgres"]),
        "HASURA_IMAGE": image_id(docker_engine, test_images["hasura"]),
        "TRAEFIK_IMAGE": image_id(docker_engine, test_images["traefik"]),
        "SOCKET_PROXY_IMAGE": image_id(docker_engine, test_images["socket-proxy"]),
        "HTTP_PORT": str(server.http_port),
        "HTTPS_PORT": str(server.https_port),
    }
    envfile.update(server.env_file, overrides)
    shutil.chown(server.env_file, server.ssh.user, server.ssh.user)


def test_first_deploy_needs_subtractive(server):
    result = server.fab("deploy", "HEAD", *DEPLOY_OPTIONS)
    assert result.returncode == 1
    assert "--subtractive" in text(result)
    assert not (server.root / "deploy.lock").exists()


def test_first_deploy_serves_version(server):
    check(server.fab("deploy", "HEAD", "--subtractive", *DEPLOY_OPTIONS))
    server.wait_for_version(server.versions["one"])
    values = server.env_values()
    response = httpx.post(
        server.url("/v1/graphql"),
        headers={
            "Host": API_HOST,
            "x-hasura-admin-secret": values["HASURA_GRAPHQL_ADMIN_SECRET"],
        },
        json={"query": "{ __typename }"},
        timeout=5,
    )
    assert response.json() == {"data": {"__typename": "query_root"}}
    current = (server.root / "current").resolve()
    assert current.name == server.versions["one"]


def test_status_lists_services(server):
    result = check(server.fab("status"))
    for service in ("postgres", "hasura", "lucky", "traefik", "socket-proxy"):
        assert f"{STACK}_{service}" in result.stdout
    assert f"APP_VERSION): {server.versions['one']}" in result.stdout


class Load:
    """GET /version in a loop until stopped (at most `limit` requests)."""

    def __init__(self, server: Server, limit: int = 20000) -> None:
        self.server = server
        self.limit = limit
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.count = 0
        self.versions: set[str] = set()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        with httpx.Client(headers={"Host": API_HOST}, timeout=5) as client:
            while not self.stop.is_set() and self.count < self.limit:
                self.count += 1
                try:
                    response = client.get(self.server.url("/version"))
                    if response.status_code == 200:
                        self.versions.add(response.json()["version"])
                    else:
                        self.failures.append(
                            f"{response.status_code} {response.text[:100]}"
                        )
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                time.sleep(0.02)


def test_additive_deploy_under_load(server):
    migration = server.project / "db" / "migrations" / "20240201000000_add_column.sql"
    migration.write_text(ADD_COLUMN)
    server.versions["two"] = commit(server.project, "Add a column")
    build_and_push(server, server.docker_config)

    load = Load(server)
    load.thread.start()
    try:
        check(server.fab("deploy", "HEAD", *DEPLOY_OPTIONS))
        time.sleep(3)
    finally:
        load.stop.set()
        load.thread.join()
    assert load.count > 100
    assert load.failures == []
    assert server.get_version() == server.versions["two"]
    assert (
        server.psql(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'versions' AND column_name = 'note'"
        )
        == "note"
    )
    backups = list((server.root / "backups").glob("*.dump"))
    assert len(backups) == 1


def test_concurrent_deploy_is_refused(server):
    fab = str(Path(sys.executable).parent / "fab")
    env = {
        **os.environ,
        "LHD_AUDIT_LOG": str(server.audit_log),
        "LHD_SEND_GRID_KEY": SEND_GRID_KEY,
        "LHD_KNOWN_HOSTS": str(server.ssh.known_hosts),
    }
    first = subprocess.Popen(
        [
            fab,
            "-H",
            server.ssh.host,
            "-i",
            str(server.ssh.key),
            "deploy",
            "HEAD",
            *DEPLOY_OPTIONS,
        ],
        cwd=server.project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lock = server.root / "deploy.lock" / "owner.json"
    deadline = time.monotonic() + 60
    while not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.exists(), "the first deploy never took the lock"
    second = server.fab("deploy", "HEAD", *DEPLOY_OPTIONS)
    output, _ = first.communicate(timeout=900)
    server.outputs.append(output)
    assert second.returncode == 1
    owner = json.loads(lock.read_text()) if lock.exists() else None
    assert "Another deploy holds the lock" in text(second)
    assert " since " in text(second)
    assert f"deploying {server.versions['two']}" in text(second)
    assert first.returncode == 0, output
    assert owner is None
    assert not (server.root / "deploy.lock").exists()


BROKEN_MIGRATION = """\
-- +up
ALTER TABLE no_such_table ADD COLUMN note text;

-- +down
SELECT 1;
"""


def test_failed_migration_keeps_old_code(server):
    migration = server.project / "db" / "migrations" / "20240301000000_broken.sql"
    migration.write_text(BROKEN_MIGRATION)
    server.versions["broken"] = commit(server.project, "Add a broken migration")
    build_and_push(server, server.docker_config)

    result = server.fab("deploy", "HEAD", *DEPLOY_OPTIONS)
    assert result.returncode == 1, text(result)
    assert "previous release keeps serving" in text(result)
    newest_backup = max((server.root / "backups").glob("*.dump")).name
    assert newest_backup in text(result)
    assert server.get_version() == server.versions["two"]
    assert (server.root / "current").resolve().name == server.versions["two"]
    assert not (server.root / "deploy.lock").exists()

    migration.unlink()
    commit(server.project, "Remove the broken migration")


def test_unhealthy_deploy_rolls_back(server, docker_engine):
    (server.project / "UNHEALTHY.md").write_text(
        "This commit's image fails its health check.\n"
    )
    server.versions["three"] = commit(server.project, "Break the health check")
    base = f"{server.registry}/lhdtest/fixture-app/lucky:{server.versions['two']}"
    image = f"{server.registry}/lhdtest/fixture-app/lucky:{server.versions['three']}"
    run(
        ["docker", "build", "--quiet", "--tag", image, "-"],
        input=UNHEALTHY.format(base=base),
    )
    run(
        ["docker", "--config", str(server.docker_config), "push", "--quiet", image],
        timeout=600,
    )

    started = time.monotonic()
    result = server.fab("deploy", "HEAD", "--subtractive", *DEPLOY_OPTIONS)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, text(result)
    assert f"{STACK}_lucky" in text(result)
    assert "rolled the update back" in text(result)
    service = docker_engine.services.get(f"{STACK}_lucky")
    spec_image = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert spec_image.split("@")[0] == base
    assert server.get_version() == server.versions["two"]
    assert (server.root / "current").resolve().name == server.versions["two"]
    assert not (server.root / "deploy.lock").exists()
    print(f"unhealthy deploy failed after {elapsed:.0f} s")


def test_rollback_to_first_version(server):
    check(server.fab("rollback", server.versions["one"], *DEPLOY_OPTIONS))
    assert server.psql("SELECT max(version) FROM migrations") == "20240101000000"
    assert (
        server.psql(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'versions' AND column_name = 'note'"
        )
        == "0"
    )
    assert server.get_version() == server.versions["one"]
    assert (server.root / "current").resolve().name == server.versions["one"]


def test_logs_and_backup_tasks(server):
    logs = check(server.fab("logs", "lucky", "--tail", "5"))
    assert "GET /version" in text(logs)
    before = set((server.root / "backups").glob("*.dump"))
    result = check(server.fab("backup"))
    (created,) = set((server.root / "backups").glob("*.dump")) - before
    assert created.name in text(result)
    assert created.stat().st_size > 0


def test_restore_backup(server):
    backups = sorted((server.root / "backups").glob("*.dump"))
    before_add_column = backups[0].name
    result = check(server.fab("restore", before_add_column, "--yes"))
    assert "every change since that backup is lost" in text(result)
    assert server.psql("SELECT max(version) FROM migrations") == "20240101000000"
    deadline = time.monotonic() + 180
    while True:
        try:
            if server.get_version() == server.versions["one"]:
                break
        except (AssertionError, httpx.HTTPError):
            pass
        assert time.monotonic() < deadline, "the app did not answer after the restore"
        time.sleep(1)


def test_no_secret_in_argv_or_output(server):
    from lhd import prodenv

    values = server.env_values()
    secrets = {key: values[key] for key in prodenv.SECRET_KEYS if values.get(key)}
    secrets["registry password"] = server.password
    recorded = [json.loads(line) for line in server.audit_log.read_text().splitlines()]
    assert len(recorded) > 50
    argv_text = "\n".join(" ".join(entry["argv"]) for entry in recorded)
    server.sampler.stop.set()
    server.sampler.thread.join()
    sampled = "\n".join(server.sampler.seen)
    outputs = "\n".join(server.outputs)
    assert len(server.sampler.seen) > 100
    for key, value in secrets.items():
        assert value not in argv_text, f"{key} in a recorded command line"
        assert value not in sampled, f"{key} in a process command line"
        assert value not in outputs, f"{key} in the output of a task"


def converge(stack: str, service: str, image: str, timeout: float = 400) -> None:
    """Wait until every running task of the service uses `image`."""
    deadline = time.monotonic() + timeout
    name = f"{stack}_{service}"
    while time.monotonic() < deadline:
        state = run(
            ["docker", "service", "inspect", "--format", "{{json .UpdateStatus}}", name]
        ).strip()
        tasks = run(
            [
                "docker",
                "service",
                "ps",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Image}} {{.CurrentState}}",
                name,
            ]
        )
        lines = [line for line in tasks.splitlines() if line]
        done = state in ("null", "") or '"completed"' in state
        if (
            done
            and lines
            and all(line.startswith(image) and "Running" in line for line in lines)
        ):
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} did not converge on {image}")


@pytest.mark.benchmark
def test_benchmark_deploy_against_stack_deploy(server):
    """Print the deploy's failed requests and wall time beside a bare stack deploy.

    A benchmark, not a check of speed: run by `nox -s benchmark`, deselected
    from the test suite, and it asserts only that both deploys happened.
    """
    repository = f"{server.registry}/lhdtest/fixture-app/lucky"
    load = Load(server)
    load.thread.start()
    started = time.monotonic()
    result = server.fab("deploy", server.versions["two"], *DEPLOY_OPTIONS)
    fab_seconds = time.monotonic() - started
    load.stop.set()
    load.thread.join()
    check(result)
    fab_requests, fab_failures = load.count, len(load.failures)

    release = server.root / "releases" / server.versions["one"]
    files = []
    for name in ("compose.yml", "compose.prod.yml", "compose.swarm.yml"):
        files += ["--compose-file", str(release / "Docker" / name)]
    image = f"{repository}:{server.versions['one']}"
    env_script = 'set -a && . "$1" && set +a && shift && exec "$@"'
    load = Load(server)
    load.thread.start()
    started = time.monotonic()
    run(
        ["sh", "-c", env_script, "lhd-env", str(server.env_file), "env",
         f"LUCKY_IMAGE={image}", f"APP_VERSION={server.versions['one']}",
         f"RELEASE_DIR={release}", "docker", "stack", "deploy",
         "--resolve-image", "never", *files, STACK],
    )  # fmt: skip
    bare_command_seconds = time.monotonic() - started
    converge(STACK, "lucky", image)
    bare_seconds = time.monotonic() - started
    load.stop.set()
    load.thread.join()
    bare_requests, bare_failures = load.count, len(load.failures)

    report = {
        "fab_deploy_seconds": round(fab_seconds, 2),
        "fab_deploy_requests": fab_requests,
        "fab_deploy_failed_requests": fab_failures,
        "stack_deploy_command_seconds": round(bare_command_seconds, 2),
        "stack_deploy_converged_seconds": round(bare_seconds, 2),
        "stack_deploy_requests": bare_requests,
        "stack_deploy_failed_requests": bare_failures,
    }
    print("BENCHMARK-DEPLOY " + json.dumps(report))
    assert fab_requests > 0
    assert bare_requests > 0
