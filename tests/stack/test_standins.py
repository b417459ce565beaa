"""Tests of the local test images on a real Docker engine.

They check that lhd-test/postgres honours the official postgres image's
contract, and that the crystal and hasura stand-ins honour the contracts in
tests/images/*/README.md. Every container, network and volume these tests
create is named lhdtest-standin-* and is removed when the test ends.

Set LHD_SKIP_DOCKER=1 to skip them on a machine without a Docker engine;
otherwise a missing engine is a test failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import docker
import docker.errors
import httpx
import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPOSITORY_ROOT / "tests" / "images" / "build.py"
FIXTURE_APP = REPOSITORY_ROOT / "tests" / "fixtures" / "lucky_app"
NAME_PREFIX = "lhdtest-standin-"

POSTGRES_READY_SECONDS = 60
HASURA_READY_SECONDS = 90
HTTP_READY_SECONDS = 30
CONTAINER_EXIT_SECONDS = 60
# `crystal spec` of the fixture took about 6 s on a 2-CPU test machine, so 300 s leaves headroom.
CRYSTAL_SPEC_SECONDS = 300

# 44 characters with the JSON and URL special characters a generated key may contain.
JWT_KEY = 'k3y"with/slash=and+plus-' + "0123456789abcdefghij"
ADMIN_SECRET = "admin-secret-for-tests"
CLAIMS_NAMESPACE = "https://hasura.io/jwt/claims"

# Database addresses in these tests are container names on networks the tests
# create, container IP addresses, or this closed port on the container's own
# loopback. An unknown name would be forwarded to the host's DNS resolver.
CLOSED_LOOPBACK_ADDRESS = "127.0.0.1:1"


def load_build_module():
    spec = importlib.util.spec_from_file_location("lhd_test_images_build", BUILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """Build the test images once per session and return their tags by role."""
    try:
        info = subprocess.run(
            ["docker", "info"], capture_output=True, text=True, timeout=60
        )
        engine_error = info.stderr.strip() if info.returncode != 0 else ""
    except (OSError, subprocess.TimeoutExpired) as error:
        engine_error = str(error)
    if engine_error:
        reason = (
            f"`docker info` failed, so no Docker engine is reachable: {engine_error}"
        )
        if os.environ.get("LHD_SKIP_DOCKER") == "1":
            pytest.skip(f"LHD_SKIP_DOCKER=1 and {reason}")
        pytest.fail(
            f"{reason}\nStart an engine (.ci/install-engine) or set LHD_SKIP_DOCKER=1 to skip."
        )
    return load_build_module().build_all()


def unique_name(role: str) -> str:
    return f"{NAME_PREFIX}{role}-{secrets.token_hex(4)}"


class DockerResources:
    """Containers and networks created by one fixture, removed together by close()."""

    def __init__(self):
        self.client = docker.from_env()
        self.containers = []
        self.networks = []

    def create_network(self):
        network = self.client.networks.create(unique_name("net"), driver="bridge")
        self.networks.append(network)
        return network

    def run(self, image: str, role: str, **options):
        """Start a detached container named lhdtest-standin-<role>-<random>."""
        options.setdefault("name", unique_name(role))
        container = self.client.containers.run(image, detach=True, **options)
        self.containers.append(container)
        return container

    def close(self) -> None:
        for container in reversed(self.containers):
            try:
                # v=True also removes the anonymous volume of the postgres image.
                container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        for network in self.networks:
            try:
                network.remove()
            except docker.errors.NotFound:
                pass
        self.client.close()


@pytest.fixture
def resources(images):
    created = DockerResources()
    try:
        yield created
    finally:
        created.close()


@pytest.fixture(scope="module")
def module_resources(images):
    created = DockerResources()
    try:
        yield created
    finally:
        created.close()


# --- Helpers ------------------------------------------------------------------


def wait_until(check, timeout: float, description: str, interval: float = 0.3):
    """Call check() until it returns a truthy value, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, docker.errors.APIError) as error:
            last_error = error
        time.sleep(interval)
    pytest.fail(
        f"timed out after {timeout:.0f} s waiting for {description}; last error: {last_error}"
    )


def wait_for_exit(
    container, timeout: float = CONTAINER_EXIT_SECONDS
) -> tuple[int, str, str]:
    """Wait for container to stop and return its exit code, stdout and stderr."""
    result = container.wait(timeout=timeout)
    stdout = container.logs(stdout=True, stderr=False).decode()
    stderr = container.logs(stdout=False, stderr=True).decode()
    return result["StatusCode"], stdout, stderr


def published_url(container, container_port: str) -> str:
    """Return http://127.0.0.1:<host port> for a port published to a random loopback port."""

    def host_port():
        container.reload()
        bindings = container.ports.get(container_port)
        return bindings[0]["HostPort"] if bindings else None

    port = wait_until(
        host_port, 10, f"the host port of {container.name} {container_port}"
    )
    return f"http://127.0.0.1:{port}"


def loopback_port(container_port: str) -> dict:
    return {container_port: ("127.0.0.1", None)}


def run_in(
    container, command: list[str], environment: dict | None = None
) -> tuple[int, str]:
    """Run command in a running container and return its exit code and combined output."""
    result = container.exec_run(command, environment=environment or {}, workdir="/app")
    return result.exit_code, result.output.decode()


def sign_jwt(claims: dict, key: str, algorithm: str = "HS256") -> str:
    def encode(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = encode(json.dumps({"alg": algorithm, "typ": "JWT"}).encode())
    payload = encode(json.dumps(claims).encode())
    signature = hmac.new(
        key.encode(), f"{header}.{payload}".encode(), hashlib.sha256
    ).digest()
    return f"{header}.{payload}.{encode(signature)}"


def hasura_claims(role: str = "user", **extra) -> dict:
    claims = {"sub": "1", "exp": int(time.time()) + 300, **extra}
    claims[CLAIMS_NAMESPACE] = {
        "x-hasura-allowed-roles": [role],
        "x-hasura-default-role": role,
    }
    return claims


@dataclass
class PostgresServer:
    container: object
    password: str

    def url(self, database: str, host: str | None = None) -> str:
        host = host or self.container.name
        return f"postgres://postgres:{quote(self.password, safe='')}@{host}:5432/{database}"

    def ip_address(self) -> str:
        self.container.reload()
        networks = self.container.attrs["NetworkSettings"]["Networks"]
        return next(iter(networks.values()))["IPAddress"]

    def psql(self, sql: str) -> tuple[int, str]:
        result = self.container.exec_run(
            ["psql", "-X", "-At", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql]
        )
        return result.exit_code, result.output.decode()


def start_postgres(
    resources: DockerResources, network, images, name: str | None = None, **environment
) -> PostgresServer:
    """Start lhd-test/postgres on network and wait until it accepts TCP connections."""
    # ':', '@' and '/' make the password need percent-encoding in a URL.
    password = environment.pop("POSTGRES_PASSWORD", f"p@ss:w/rd-{secrets.token_hex(4)}")
    container = resources.run(
        images["postgres"],
        "postgres",
        name=name or unique_name("postgres"),
        network=network.name,
        environment={"POSTGRES_PASSWORD": password, **environment},
    )

    def is_ready():
        container.reload()
        if container.status == "exited":
            pytest.fail(
                f"postgres exited during start-up:\n{container.logs().decode()[-2000:]}"
            )
        # Over TCP, because the init step's temporary server listens only on the socket.
        return (
            container.exec_run(
                ["pg_isready", "-h", "127.0.0.1", "-p", "5432"]
            ).exit_code
            == 0
        )

    wait_until(is_ready, POSTGRES_READY_SECONDS, f"pg_isready in {container.name}")
    return PostgresServer(container, password)


# --- lhd-test/postgres --------------------------------------------------------


def test_postgres_initialises_with_password(resources, images):
    network = resources.create_network()
    server = start_postgres(resources, network, images, POSTGRES_DB="app_db")

    exit_code, output = server.psql(
        "SELECT datname FROM pg_database WHERE datname = 'app_db'"
    )
    assert exit_code == 0, output
    assert output.strip() == "app_db"

    # A second container connects over the network, so scram-sha-256 applies.
    client = resources.run(
        images["postgres"], "psql", network=network.name, command=["sleep", "300"]
    )
    query = [
        "psql",
        "-X",
        "-At",
        "-h",
        server.container.name,
        "-U",
        "postgres",
        "-d",
        "app_db",
        "-c",
        "SELECT current_user",
    ]
    good = client.exec_run(query, environment={"PGPASSWORD": server.password})
    assert good.exit_code == 0, good.output.decode()
    assert good.output.decode().strip() == "postgres"
    bad = client.exec_run(query, environment={"PGPASSWORD": "wrong-password"})
    assert bad.exit_code != 0
    assert "password authentication failed" in bad.output.decode()

    tools = client.exec_run(
        ["sh", "-c", "command -v psql pg_isready pg_dump pg_restore"]
    )
    assert tools.exit_code == 0, tools.output.decode()


def test_postgres_without_password_exits(resources, images):
    container = resources.run(images["postgres"], "postgres-nopw")
    exit_code, _, stderr = wait_for_exit(container)
    assert exit_code == 1
    assert "superuser password is not specified" in stderr


def test_postgres_trust_needs_no_password(resources, images):
    network = resources.create_network()
    container = resources.run(
        images["postgres"],
        "postgres-trust",
        network=network.name,
        environment={"POSTGRES_HOST_AUTH_METHOD": "trust"},
    )
    wait_until(
        lambda: container.exec_run(["pg_isready", "-h", "127.0.0.1"]).exit_code == 0,
        POSTGRES_READY_SECONDS,
        "pg_isready with trust",
    )
    hba = container.exec_run(["sh", "-c", 'cat "$PGDATA/pg_hba.conf"']).output.decode()
    assert "host all all all trust" in hba


# --- Hasura stand-in: configuration errors ------------------------------------


@pytest.fixture
def metadata_dir(tmp_path) -> Path:
    directory = tmp_path / "metadata"
    directory.mkdir()
    (directory / "version.yaml").write_text("version: 3\n")
    return directory


def run_hasura_until_exit(
    resources, images, environment: dict, metadata: Path | None
) -> tuple[int, str]:
    """Start the Hasura stand-in, wait for it to exit, and return the exit code and stderr."""
    # Each case fails before any connection, and port 1 on the container's own
    # loopback would refuse one anyway.
    base = {
        "HASURA_GRAPHQL_DATABASE_URL": f"postgres://postgres:x@{CLOSED_LOOPBACK_ADDRESS}/postgres"
    }
    volumes = (
        {str(metadata): {"bind": "/hasura-metadata", "mode": "ro"}} if metadata else {}
    )
    container = resources.run(
        images["hasura"],
        "hasura-config",
        environment={**base, **environment},
        volumes=volumes,
    )
    exit_code, _, stderr = wait_for_exit(container)
    return exit_code, stderr


def test_hasura_rejects_jwt_secret_bad_json(resources, images, metadata_dir):
    exit_code, stderr = run_hasura_until_exit(
        resources,
        images,
        {"HASURA_GRAPHQL_JWT_SECRET": '{"type": "HS256", "key": '},
        metadata_dir,
    )
    assert exit_code == 1
    assert "Fatal Error" in stderr
    assert "HASURA_GRAPHQL_JWT_SECRET is not valid JSON" in stderr


def test_hasura_rejects_31_character_key(resources, images, metadata_dir):
    secret = json.dumps({"type": "HS256", "key": "k" * 31})
    exit_code, stderr = run_hasura_until_exit(
        resources, images, {"HASURA_GRAPHQL_JWT_SECRET": secret}, metadata_dir
    )
    assert exit_code == 1
    assert "Fatal Error" in stderr
    assert "31 characters long" in stderr
    assert "at least 32" in stderr


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ('["HS256", "key"]', "must be a JSON object"),
        ('{"type": "HS256"}', "missing key for type HS256"),
        ('{"type": "RS256", "key": "x"}', "type 'RS256' is not supported"),
    ],
)
def test_hasura_rejects_invalid_jwt_secret(
    resources, images, metadata_dir, secret, expected
):
    exit_code, stderr = run_hasura_until_exit(
        resources, images, {"HASURA_GRAPHQL_JWT_SECRET": secret}, metadata_dir
    )
    assert exit_code == 1
    assert expected in stderr


def test_hasura_rejects_missing_metadata_dir(resources, images):
    exit_code, stderr = run_hasura_until_exit(resources, images, {}, metadata=None)
    assert exit_code == 1
    assert "Fatal Error" in stderr
    assert "/hasura-metadata does not exist" in stderr


def test_hasura_rejects_metadata_version_2(resources, images, tmp_path):
    metadata = tmp_path / "metadata"
    metadata.mkdir()
    (metadata / "version.yaml").write_text("version: 2\n")
    exit_code, stderr = run_hasura_until_exit(resources, images, {}, metadata)
    assert exit_code == 1
    assert "must contain `version: 3`" in stderr


def test_hasura_rejects_missing_database_url(resources, images, metadata_dir):
    container = resources.run(
        images["hasura"],
        "hasura-nodb",
        volumes={str(metadata_dir): {"bind": "/hasura-metadata", "mode": "ro"}},
    )
    exit_code, _, stderr = wait_for_exit(container)
    assert exit_code == 1
    assert "HASURA_GRAPHQL_DATABASE_URL" in stderr


# --- Hasura stand-in: running against PostgreSQL ------------------------------


@dataclass
class HasuraStack:
    network: object
    postgres: PostgresServer
    hasura: object
    url: str


@pytest.fixture(scope="module")
def hasura_stack(module_resources, images, tmp_path_factory) -> HasuraStack:
    project = tmp_path_factory.mktemp("hasura")
    (project / "metadata").mkdir()
    (project / "metadata" / "version.yaml").write_text("version: 3\n")
    migration = project / "migrations" / "default" / "1700000000000_create_notes"
    migration.mkdir(parents=True)
    (migration / "up.sql").write_text(
        "CREATE TABLE notes (id serial PRIMARY KEY, body text);\n"
    )
    (migration / "down.sql").write_text("DROP TABLE notes;\n")

    network = module_resources.create_network()
    postgres = start_postgres(module_resources, network, images)
    hasura = module_resources.run(
        images["hasura"],
        "hasura",
        network=network.name,
        ports=loopback_port("8080/tcp"),
        environment={
            "HASURA_GRAPHQL_DATABASE_URL": postgres.url("postgres"),
            "HASURA_GRAPHQL_ADMIN_SECRET": ADMIN_SECRET,
            "HASURA_GRAPHQL_JWT_SECRET": json.dumps({"type": "HS256", "key": JWT_KEY}),
        },
        volumes={
            str(project / "metadata"): {"bind": "/hasura-metadata", "mode": "ro"},
            str(project / "migrations"): {"bind": "/hasura-migrations", "mode": "ro"},
        },
    )
    url = published_url(hasura, "8080/tcp")

    def is_healthy():
        hasura.reload()
        if hasura.status == "exited":
            pytest.fail(
                f"the Hasura stand-in exited:\n{hasura.logs().decode()[-2000:]}"
            )
        return httpx.get(f"{url}/healthz", timeout=5).status_code == 200

    wait_until(is_healthy, HASURA_READY_SECONDS, f"{url}/healthz")
    return HasuraStack(network, postgres, hasura, url)


def graphql(stack: HasuraStack, headers: dict, query: str = "{ __typename }") -> dict:
    response = httpx.post(
        f"{stack.url}/v1/graphql", json={"query": query}, headers=headers, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_hasura_healthz_and_version(hasura_stack):
    health = httpx.get(f"{hasura_stack.url}/healthz", timeout=5)
    assert health.status_code == 200
    assert health.text == "OK"
    version = httpx.get(f"{hasura_stack.url}/v1/version", timeout=5)
    assert version.json() == {"version": "v2.44.0-standin"}


def test_hasura_applies_migrations(hasura_stack):
    exit_code, output = hasura_stack.postgres.psql(
        "SELECT version, dirty FROM hdb_catalog.schema_migrations"
    )
    assert exit_code == 0, output
    assert output.split() == ["1700000000000|f"]
    exit_code, output = hasura_stack.postgres.psql("SELECT to_regclass('public.notes')")
    assert output.strip() == "notes"


def test_hasura_admin_secret_authorises(hasura_stack):
    body = graphql(hasura_stack, {"x-hasura-admin-secret": ADMIN_SECRET})
    assert body == {"data": {"__typename": "query_root"}}


def test_hasura_jwt_authorises(hasura_stack):
    token = sign_jwt(hasura_claims(), JWT_KEY)
    body = graphql(hasura_stack, {"Authorization": f"Bearer {token}"})
    assert body == {"data": {"__typename": "query_root"}}


@pytest.mark.parametrize(
    ("case", "expected_code"),
    [
        ("wrong admin secret", "access-denied"),
        ("no credentials", "access-denied"),
        ("wrong key", "invalid-jwt"),
        ("expired", "invalid-jwt"),
        ("no claims", "invalid-jwt"),
        ("role not allowed", "access-denied"),
    ],
)
def test_hasura_rejects_request(hasura_stack, case, expected_code):
    headers = {
        "wrong admin secret": {"x-hasura-admin-secret": "not-the-secret"},
        "no credentials": {},
        "wrong key": {"Authorization": "Bearer " + sign_jwt(hasura_claims(), "x" * 40)},
        "expired": {
            "Authorization": "Bearer "
            + sign_jwt(hasura_claims(exp=int(time.time()) - 60), JWT_KEY)
        },
        "no claims": {"Authorization": "Bearer " + sign_jwt({"sub": "1"}, JWT_KEY)},
        "role not allowed": {
            "Authorization": "Bearer " + sign_jwt(hasura_claims(), JWT_KEY),
            "x-hasura-role": "admin",
        },
    }[case]
    body = graphql(hasura_stack, headers)
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == expected_code


def test_hasura_answers_only_typename(hasura_stack):
    body = graphql(
        hasura_stack, {"x-hasura-admin-secret": ADMIN_SECRET}, "{ notes { id } }"
    )
    assert body == {"errors": [{"message": "stand-in supports only __typename"}]}


def test_hasura_logs_json_lines(hasura_stack):
    httpx.get(f"{hasura_stack.url}/v1/version", timeout=5)
    lines = hasura_stack.hasura.logs(stdout=True, stderr=False).decode().splitlines()
    http_logs = [json.loads(line) for line in lines if '"http-log"' in line]
    assert http_logs, lines[-5:]
    assert any(
        entry["detail"]["http_info"]["url"] == "/v1/version" for entry in http_logs
    )
    assert not any(JWT_KEY in line or ADMIN_SECRET in line for line in lines)


def test_hasura_stops_on_sigterm(resources, images, metadata_dir):
    network = resources.create_network()
    postgres = start_postgres(resources, network, images)
    hasura = resources.run(
        images["hasura"],
        "hasura-stop",
        network=network.name,
        environment={"HASURA_GRAPHQL_DATABASE_URL": postgres.url("postgres")},
        volumes={str(metadata_dir): {"bind": "/hasura-metadata", "mode": "ro"}},
    )
    wait_until(
        lambda: "listening on port 8080" in hasura.logs().decode(),
        HASURA_READY_SECONDS,
        "the Hasura stand-in to listen",
    )
    started = time.monotonic()
    hasura.stop(timeout=20)
    assert time.monotonic() - started < 5
    assert hasura.wait(timeout=10)["StatusCode"] == 0


def test_hasura_waits_for_database(resources, images, metadata_dir):
    network = resources.create_network()
    password = "late-password"
    # The container exists (so its name resolves) but refuses connections for 3 s.
    postgres = resources.run(
        images["postgres"],
        "postgres-late",
        network=network.name,
        environment={"POSTGRES_PASSWORD": password},
        entrypoint=["sh", "-c", 'sleep 3 && exec docker-entrypoint.sh "$@"', "sh"],
        command=["postgres"],
    )
    hasura = resources.run(
        images["hasura"],
        "hasura-wait",
        network=network.name,
        environment={
            "HASURA_GRAPHQL_DATABASE_URL": f"postgres://postgres:{password}@{postgres.name}:5432/postgres"
        },
        volumes={str(metadata_dir): {"bind": "/hasura-metadata", "mode": "ro"}},
    )
    wait_until(
        lambda: "retrying (attempt 1)" in hasura.logs().decode(),
        HASURA_READY_SECONDS,
        "a database retry log line",
    )
    wait_until(
        lambda: "listening on port 8080" in hasura.logs().decode(),
        HASURA_READY_SECONDS,
        "the Hasura stand-in to listen",
    )
    hasura.reload()
    assert hasura.status == "running"


def test_crystal_spec_of_fixture_passes(resources, images, hasura_stack, tmp_path):
    """Compile and run the fixture's spec with the real crystal compiler against the stand-in."""
    app = tmp_path / "app"
    shutil.copytree(FIXTURE_APP, app)
    container = resources.run(
        images["crystal"],
        "crystal-spec",
        network=hasura_stack.network.name,
        working_dir="/app",
        volumes={str(app): {"bind": "/app"}},
        environment={
            "LUCKY_ENV": "test",
            "HASURA_URL": f"http://{hasura_stack.hasura.name}:8080",
        },
        command=["crystal", "spec"],
    )
    exit_code, stdout, stderr = wait_for_exit(container, CRYSTAL_SPEC_SECONDS)
    assert exit_code == 0, stdout + stderr
    assert "2 examples, 0 failures" in stdout


# --- Hasura CLI stand-in --------------------------------------------------------


def test_hasura_cli_console_settings(resources, images, tmp_path):
    (tmp_path / "config.yaml").write_text(
        "version: 3\nendpoint: http://localhost:8080\n"
    )
    container = resources.run(
        images["hasura"],
        "hasura-cli",
        volumes={str(tmp_path): {"bind": "/hasura"}},
        ports={**loopback_port("9695/tcp"), **loopback_port("9693/tcp")},
        command=[
            "hasura-cli",
            "console",
            "--address",
            "0.0.0.0",
            "--no-browser",
            "--console-port",
            "9695",
            "--api-port",
            "9693",
            "--skip-update-check",
        ],
    )
    console_url = published_url(container, "9695/tcp")
    api_url = published_url(container, "9693/tcp")
    page = wait_until(
        lambda: httpx.get(console_url, timeout=5),
        HTTP_READY_SECONDS,
        "the console page",
    )
    assert page.status_code == 200
    assert "<html>" in page.text

    settings = f"{api_url}/apis/migrate/settings"
    assert httpx.get(settings, timeout=5).json() == {"migration_mode": "true"}
    change = httpx.put(
        settings, json={"name": "migration_mode", "value": "false"}, timeout=5
    )
    assert change.status_code == 200
    assert change.json() == {"name": "migration_mode", "value": "false"}
    assert httpx.get(settings, timeout=5).json() == {"migration_mode": "false"}


def test_hasura_cli_needs_config_yaml(resources, images, tmp_path):
    container = resources.run(
        images["hasura"],
        "hasura-cli-noconfig",
        volumes={str(tmp_path): {"bind": "/hasura"}},
        command=["hasura-cli", "console", "--address", "0.0.0.0", "--no-browser"],
    )
    exit_code, _, stderr = wait_for_exit(container)
    assert exit_code == 1
    assert "cannot find [config.yaml] | [config.yml]" in stderr


# --- shards and lucky stand-ins ------------------------------------------------


@pytest.fixture
def app_dir(tmp_path) -> Path:
    """A writable copy of the fixture app, so the stand-ins never write into the repository."""
    app = tmp_path / "app"
    shutil.copytree(FIXTURE_APP, app)
    return app


def start_tools(
    resources, images, app_dir: Path, network=None, environment: dict | None = None
):
    """Start a crystal stand-in container that idles, for exec_run of shards and lucky."""
    return resources.run(
        images["crystal"],
        "crystal",
        network=network.name if network else None,
        working_dir="/app",
        volumes={str(app_dir): {"bind": "/app"}},
        environment=environment or {},
        command=["sleep", "600"],
    )


def test_shards_install_writes_lock(resources, images, app_dir):
    tools = start_tools(resources, images, app_dir)
    exit_code, output = run_in(tools, ["shards", "install", "--production"])
    assert exit_code == 0, output
    lock = app_dir / "shard.lock"
    assert "version: 2.0\nshards: {}\n" in lock.read_text()
    assert (app_dir / "lib").is_dir()
    assert (app_dir / ".shards").is_dir()

    # An up-to-date lock is left alone, and a newer shard.yml rewrites it.
    os.utime(lock, (time.time() - 100, time.time() - 100))
    os.utime(app_dir / "shard.yml", (time.time() - 200, time.time() - 200))
    before = lock.stat().st_mtime
    assert run_in(tools, ["shards", "install"])[0] == 0
    assert lock.stat().st_mtime == before
    os.utime(app_dir / "shard.yml", None)
    assert run_in(tools, ["shards", "install"])[0] == 0
    assert lock.stat().st_mtime > before


def test_shards_build_writes_launcher(resources, images, app_dir):
    tools = start_tools(resources, images, app_dir)
    exit_code, output = run_in(
        tools, ["shards", "build", "--production", "--release", "--no-debug"]
    )
    assert exit_code == 0, output
    launcher = app_dir / "bin" / "fixture_app"
    assert os.access(launcher, os.X_OK)
    assert 'exec lucky serve "$@"' in launcher.read_text()


def test_shards_unknown_subcommand_fails(resources, images, app_dir):
    tools = start_tools(resources, images, app_dir)
    exit_code, output = run_in(tools, ["shards", "update"])
    assert exit_code == 1
    assert "only `install` and `build`" in output


def test_lucky_unknown_task_fails(resources, images, app_dir):
    tools = start_tools(resources, images, app_dir)
    exit_code, output = run_in(tools, ["lucky", "gen.action"])
    assert exit_code == 1
    assert "Task 'gen.action' not found" in output


def test_crystal_image_has_tools(resources, images, app_dir):
    tools = start_tools(resources, images, app_dir)
    exit_code, output = run_in(
        tools, ["sh", "-c", "command -v crystal git python3 psql useradd"]
    )
    assert exit_code == 0, output
    exit_code, output = run_in(tools, ["crystal", "--version"])
    assert "Crystal 1." in output


def test_lucky_migrate_seed_rollback(resources, images, app_dir):
    network = resources.create_network()
    postgres = start_postgres(resources, network, images)
    environment = {
        "DATABASE_URL": postgres.url("fixture_app_test"),
        "APP_VERSION": "test-1.2.3",
    }
    tools = start_tools(resources, images, app_dir, network, environment)

    steps = [
        (["lucky", "db.create"], "Done creating fixture_app_test"),
        (["lucky", "db.verify_connection"], "Connection verified"),
        (["lucky", "db.create"], "Already created fixture_app_test"),
        (["lucky", "db.migrate"], "Migrated CreateVersions::V20240101000000"),
        (["lucky", "db.migrate"], "Already up-to-date"),
        (["lucky", "db.migrations.status"], "20240101000000  create_versions"),
        (["lucky", "db.seed.required_data"], "Done adding required data"),
        (["lucky", "db.seed.required_data"], "Done adding required data"),
        (["lucky", "db.seed.sample_data"], "Done adding sample data"),
    ]
    for command, expected in steps:
        exit_code, output = run_in(tools, command)
        assert exit_code == 0, f"{command}: {output}"
        assert expected in output, f"{command}: {output}"

    query = "SELECT version FROM versions"
    exit_code, output = run_in(
        tools, ["psql", "-X", "-At", environment["DATABASE_URL"], "-c", query]
    )
    assert exit_code == 0, output
    assert output.split() == ["test-1.2.3"]

    exit_code, output = run_in(tools, ["lucky", "db.rollback_to", "20230101000000"])
    assert exit_code == 0, output
    assert "Rolled back CreateVersions::V20240101000000" in output
    exit_code, output = run_in(
        tools,
        [
            "psql",
            "-X",
            "-At",
            environment["DATABASE_URL"],
            "-c",
            "SELECT count(*) FROM migrations",
        ],
    )
    assert output.strip() == "0"

    exit_code, output = run_in(tools, ["lucky", "db.drop"])
    assert exit_code == 0, output
    assert "Done dropping fixture_app_test" in output


def test_lucky_seed_version_falls_back(resources, images, app_dir):
    network = resources.create_network()
    postgres = start_postgres(
        resources, network, images, POSTGRES_DB="fixture_app_test"
    )
    environment = {"DATABASE_URL": postgres.url("fixture_app_test")}
    tools = start_tools(resources, images, app_dir, network, environment)
    for command in (["lucky", "db.migrate"], ["lucky", "db.seed.required_data"]):
        exit_code, output = run_in(tools, command)
        assert exit_code == 0, output
    # The copy of the fixture is no git repository, and APP_VERSION is unset.
    exit_code, output = run_in(
        tools,
        [
            "psql",
            "-X",
            "-At",
            environment["DATABASE_URL"],
            "-c",
            "SELECT version FROM versions",
        ],
    )
    assert output.split() == ["pre-first-commit"]


def test_lucky_verify_connection_fails_without_database(resources, images, app_dir):
    environment = {
        "DATABASE_URL": f"postgres://postgres:x@{CLOSED_LOOPBACK_ADDRESS}/app"
    }
    tools = start_tools(resources, images, app_dir, environment=environment)
    exit_code, output = run_in(tools, ["lucky", "db.verify_connection"])
    assert exit_code == 1
    assert "Unable to connect to Postgres for database 'app'" in output


def test_lucky_serves_version_then_503(resources, images, app_dir):
    network = resources.create_network()
    postgres = start_postgres(resources, network, images, POSTGRES_DB="fixture_app")
    environment = {
        "DATABASE_URL": postgres.url("fixture_app"),
        "APP_VERSION": "v-served",
    }
    tools = start_tools(resources, images, app_dir, network, environment)
    for command in (
        ["lucky", "db.migrate"],
        ["lucky", "db.seed.required_data"],
        ["shards", "build"],
    ):
        exit_code, output = run_in(tools, command)
        assert exit_code == 0, f"{command}: {output}"

    # The production launcher that `shards build` wrote, as a Dockerfile CMD would run it.
    # It reaches PostgreSQL by IP address, because once the container stops its
    # name no longer resolves on the network and the lookup would leave the host.
    by_address = postgres.url("fixture_app", host=postgres.ip_address())
    server = resources.run(
        images["crystal"],
        "lucky-serve",
        network=network.name,
        working_dir="/app",
        volumes={str(app_dir): {"bind": "/app"}},
        environment={**environment, "DATABASE_URL": by_address, "PORT": "5000"},
        ports=loopback_port("5000/tcp"),
        command=["bin/fixture_app"],
    )
    url = published_url(server, "5000/tcp")
    home = wait_until(
        lambda: httpx.get(f"{url}/", timeout=5), HTTP_READY_SECONDS, f"{url}/"
    )
    assert home.status_code == 200
    assert home.json() == {"hello": "Hello World from Home::Index"}

    version = httpx.get(f"{url}/version", timeout=10)
    assert version.status_code == 200
    assert version.json() == {"version": "v-served"}
    assert httpx.get(f"{url}/missing", timeout=5).status_code == 404

    postgres.container.stop(timeout=20)
    unavailable = httpx.get(f"{url}/version", timeout=20)
    assert unavailable.status_code == 503
    assert "error" in unavailable.json()

    def log_with_503():
        text = server.logs(stdout=True, stderr=False).decode()
        return text if "GET /version - 503" in text else None

    # The server logs a request after it has answered it.
    log = wait_until(log_with_503, HTTP_READY_SECONDS, "the log line of the 503 answer")
    assert "GET /version - 200" in log
    assert "GET /version - 503" in log

    started = time.monotonic()
    server.stop(timeout=20)
    assert time.monotonic() - started < 5


def test_lucky_watch_reads_watch_yml(resources, images, app_dir):
    # The fixture keeps Lucky's own 127.0.0.1:3000, which LHD's post-copy
    # task rewrites; this test writes the address itself.
    (app_dir / "config" / "watch.yml").write_text("host: 0.0.0.0\nport: 5055\n")
    server = resources.run(
        images["crystal"],
        "lucky-watch",
        working_dir="/app",
        volumes={str(app_dir): {"bind": "/app"}},
        ports=loopback_port("5055/tcp"),
        command=["lucky", "watch"],
    )
    url = published_url(server, "5055/tcp")
    home = wait_until(
        lambda: httpx.get(f"{url}/", timeout=5),
        HTTP_READY_SECONDS,
        f"{url}/ of lucky watch",
    )
    assert home.json() == {"hello": "Hello World from Home::Index"}
    # Without DATABASE_URL the page still works, and /version reports why it cannot.
    version = httpx.get(f"{url}/version", timeout=10)
    assert version.status_code == 503
    assert "DATABASE_URL is not set" in version.json()["error"]
