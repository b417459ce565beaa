"""The production stack on a real single-node Docker Swarm.

compose.yml, compose.prod.yml and compose.swarm.yml of a generated project
are deployed with `docker stack deploy` from a release folder laid out as on
a server. Postgres, Traefik and the socket proxy are real programs; Lucky and
Hasura are the stand-ins of tests/images.

Every request goes to Traefik's host ports on 127.0.0.1, with the Host
header of the route. The stack is deployed once per module, with TLS on, and
the tests run in file order: routing, TLS, dashboard auth, a rolling update,
a rollback, then a redeploy with TLS off.

Images are referenced by image ID: the engine then starts tasks from the
local image without trying a registry pull, and the tests need no registry.
`docker stack deploy` gets `--resolve-image never` for the same reason.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from conftest import copy_fixture_app, generate, git

STACK = "lhdtest_swarm"
DOMAIN = "lhdtest.localhost"
API_HOST = f"api.{DOMAIN}"
DASHBOARD_HOST = f"traefik.{DOMAIN}"
LABEL_AUTH_HOST = f"traefik-label.{DOMAIN}"
FILE_AUTH_HOST = f"traefik-file.{DOMAIN}"
STACK_FILES = ("compose.yml", "compose.prod.yml", "compose.swarm.yml")
TEST_OVERLAY = "compose.lhdtest.yml"
ENV_LOADER = 'set -a && . "$1" && set +a && shift && exec "$@"'
VERSION_ONE = "1111aaaa"
VERSION_TWO = "2222bbbb"
VERSION_BROKEN = "3333cccc"

CONVERGE_TIMEOUT = 240
ROLLING_MAX_REQUESTS = 2000
ROLLING_MAX_SECONDS = 120
REQUEST_INTERVAL = 0.04

# A fourth stack file, for the tests only: a second dashboard router whose
# basic-auth users are written literally in a label, as
# `lhd.htpasswd.for_compose_label` escapes them for Compose.
TEST_OVERLAY_TEMPLATE = """\
services:
  traefik:
    deploy:
      labels:
        traefik.http.routers.lhdtest-label-auth.rule: Host(`{host}`)
        traefik.http.routers.lhdtest-label-auth.entrypoints: web,websecure
        traefik.http.routers.lhdtest-label-auth.tls: ${{TLS}}
        traefik.http.routers.lhdtest-label-auth.service: api@internal
        traefik.http.routers.lhdtest-label-auth.middlewares: lhdtest-label-auth
        traefik.http.middlewares.lhdtest-label-auth.basicauth.users: "{users}"
"""

# A file-provider configuration with literal hashes, beside the template's
# middlewares.yml (which reads ADMIN_USER and HASHED_PASSWORD from Traefik's
# environment).
FILE_AUTH_TEMPLATE = """\
http:
  routers:
    lhdtest-file-auth:
      rule: Host(`{host}`)
      entryPoints: [web, websecure]
      service: api@internal
      middlewares: [lhdtest-file-auth]
      tls: {{}}
  middlewares:
    lhdtest-file-auth:
      basicAuth:
        users:
{users}
"""

FAILING_HEALTHCHECK_DOCKERFILE = """\
FROM {base}
RUN printf '#!/bin/sh\\necho "health check disabled by the test" >&2\\nexit 1\\n' > bin/healthcheck
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(command: list[str], timeout: int = 600, **options):
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, **options
    )
    assert result.returncode == 0, (
        f"{' '.join(command[:6])} ... exited {result.returncode}\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@dataclass
class Auth:
    user: str
    password: str
    scheme: str


@dataclass
class Server:
    """The server side of the stack: the stack folder, its env file and releases."""

    home: Path
    project: Path
    http_port: int
    https_port: int
    images: dict[str, str] = field(default_factory=dict)
    auths: dict[str, list[Auth]] = field(default_factory=dict)

    @property
    def env_file(self) -> Path:
        return self.home / ".env.production"

    @property
    def certificate(self) -> Path:
        return self.home / "certs" / "cert.pem"

    def release(self, version: str) -> Path:
        """Lay out releases/<version>/ from `git archive`, as the deploy uploads it."""
        folder = self.home / "releases" / version
        if not folder.exists():
            folder.mkdir(parents=True)
            archive = subprocess.run(
                ["git", "archive", "HEAD", "Docker", "db/hasura"],
                cwd=self.project,
                capture_output=True,
                check=True,
            )
            subprocess.run(
                ["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True
            )
        return folder

    def in_env(self, command: list[str], extra: dict[str, str]):
        """Run `command` with .env.production loaded by the server's fixed script."""
        return run(
            ["sh", "-c", ENV_LOADER, "lhd-env", str(self.env_file), *command],
            env={**os.environ, **extra},
        )

    def deploy(self, image: str, version: str) -> None:
        release = self.release(version)
        # Traefik's file-provider folder lives outside the releases, so a
        # new release does not restart Traefik.
        dynamic = self.home / "data" / "traefik" / "dynamic"
        for path in (release / "Docker" / "traefik" / "dynamic").iterdir():
            shutil.copyfile(path, dynamic / path.name)
        files = [*STACK_FILES, TEST_OVERLAY]
        command = ["docker", "stack", "deploy", "--with-registry-auth"]
        command += ["--resolve-image", "never"]
        for name in files:
            command += ["-c", str(release / "Docker" / name)]
        self.in_env(
            [*command, STACK],
            {
                "LUCKY_IMAGE": image,
                "APP_VERSION": version,
                "RELEASE_DIR": str(release),
            },
        )

    def migrate(self, image: str, version: str) -> str:
        """Run the one-off migration container on <stack>_migrations."""
        steps = "lucky db.create && lucky db.migrate && lucky db.seed.required_data"
        result = self.in_env(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                f"{STACK}_migrations",
                "-e",
                "DATABASE_URL",
                "-e",
                "SECRET_KEY_BASE",
                "-e",
                "APP_VERSION",
                image,
                "sh",
                "-c",
                steps,
            ],
            {"APP_VERSION": version},
        )
        return result.stdout


def ensure_swarm(client) -> None:
    state = client.info()["Swarm"]["LocalNodeState"]
    if state == "inactive":
        run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"])
    elif state != "active":
        pytest.fail(f"Swarm is {state}; run `docker swarm leave --force` and rerun.")


def stack_services(client) -> dict:
    found = client.services.list(
        filters={"label": f"com.docker.stack.namespace={STACK}"}
    )
    return {service.name.removeprefix(f"{STACK}_"): service for service in found}


def running_tasks(service) -> list[dict]:
    return [
        task
        for task in service.tasks(filters={"desired-state": "running"})
        if task["Status"]["State"] == "running"
    ]


def update_state(service) -> str:
    service.reload()
    return service.attrs.get("UpdateStatus", {}).get("State", "")


def wait_converged(client, timeout: int = CONVERGE_TIMEOUT) -> None:
    """Wait until every service runs its tasks and no update is in progress."""
    deadline = time.monotonic() + timeout
    pending: list[str] = []
    while time.monotonic() < deadline:
        services = stack_services(client)
        pending = []
        for name, service in services.items():
            state = update_state(service)
            if state in ("updating", "rollback_started"):
                pending.append(f"{name} ({state})")
            elif not running_tasks(service):
                pending.append(f"{name} (no running task)")
        if len(services) == 5 and not pending:
            return
        time.sleep(2)
    pytest.fail(f"stack not converged after {timeout} s: {', '.join(pending)}")


def wait_update(service, expected: set[str], timeout: int = CONVERGE_TIMEOUT) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = update_state(service)
        if state in expected:
            return state
        time.sleep(1)
    pytest.fail(
        f"{service.name}: update state {state!r} after {timeout} s, "
        f"expected one of {sorted(expected)}"
    )


def tls_context(server: Server) -> ssl.SSLContext:
    # The request goes to 127.0.0.1 without SNI, so Traefik serves its
    # default certificate: the test pair, which is checked as the only CA.
    context = ssl.create_default_context(cafile=str(server.certificate))
    context.check_hostname = False
    return context


def base_url(server: Server, tls: bool) -> str:
    if tls:
        return f"https://127.0.0.1:{server.https_port}"
    return f"http://127.0.0.1:{server.http_port}"


def client_for(server: Server, tls: bool = True) -> httpx.Client:
    return httpx.Client(
        base_url=base_url(server, tls),
        verify=tls_context(server) if tls else False,
        timeout=5,
    )


def wait_for_version(server: Server, version: str, tls: bool = True) -> None:
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    last = ""
    with client_for(server, tls) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get("/version", headers={"Host": API_HOST})
                last = f"{response.status_code} {response.text[:200]}"
                if (
                    response.status_code == 200
                    and response.json()["version"] == version
                ):
                    return
            except httpx.HTTPError as error:
                last = repr(error)
            time.sleep(1)
    pytest.fail(
        f"/version never returned {version} through Traefik; last: {last}\n"
        f"Traefik log:\n{service_log('traefik')}"
    )


def service_log(name: str, lines: int = 40) -> str:
    result = subprocess.run(
        [
            "docker",
            "service",
            "logs",
            "--no-trunc",
            "--tail",
            str(lines),
            f"{STACK}_{name}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout + result.stderr


def build_lucky_images(project: Path, images: dict[str, str], docker_engine) -> None:
    run(
        [
            "docker",
            "build",
            "--quiet",
            "--file",
            "Docker/lucky/Dockerfile.prod",
            "--build-arg",
            f"CRYSTAL_IMAGE={images['crystal']}",
            "--build-arg",
            "CRYSTAL_BUILD_FLAGS=--no-debug",
            "--tag",
            "lhdtest/lucky:one",
            ".",
        ],
        cwd=project,
        timeout=1200,
    )
    # A new tag with its own image ID, as a new commit would have.
    second = "FROM lhdtest/lucky:one\nLABEL lhdtest.version=two\n"
    run(["docker", "build", "--quiet", "--tag", "lhdtest/lucky:two", "-"], input=second)
    failing = FAILING_HEALTHCHECK_DOCKERFILE.format(base="lhdtest/lucky:two")
    run(
        ["docker", "build", "--quiet", "--tag", "lhdtest/lucky:unhealthy", "-"],
        input=failing,
    )


def image_id(docker_engine, reference: str) -> str:
    return docker_engine.images.get(reference).id


def write_certificate(folder: Path) -> None:
    run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={API_HOST}",
            "-addext",
            f"subjectAltName=DNS:{API_HOST},DNS:{DASHBOARD_HOST}",
            "-keyout",
            str(folder / "key.pem"),
            "-out",
            str(folder / "cert.pem"),
        ]
    )


def write_env_file(server: Server, tls: bool) -> None:
    from lhd import envfile, htpasswd

    secret_key_base = secrets.token_urlsafe(48)
    password = secrets.token_urlsafe(16)
    admin = Auth("admin", secrets.token_urlsafe(16), "bcrypt")
    server.auths["dashboard"] = [admin]
    envfile.update(
        server.env_file,
        {
            "POSTGRES_USER": "lhd",
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DB": STACK,
            "DATABASE_URL": f"postgres://lhd:{password}@postgres:5432/{STACK}",
            "HASURA_GRAPHQL_ADMIN_SECRET": secrets.token_urlsafe(24),
            "SECRET_KEY_BASE": secret_key_base,
            "HASURA_GRAPHQL_JWT_SECRET": json.dumps(
                {"type": "HS256", "key": secret_key_base}, separators=(",", ":")
            ),
            "ADMIN_USER": admin.user,
            "ADMIN_PASSWORD": admin.password,
            "ADMIN_PASSWORD_HASH": htpasswd.hash_password(admin.password),
            "APP_DOMAIN": DOMAIN,
            "SEND_GRID_KEY": "",
            "TLS": "true" if tls else "false",
            "DATA_DIR": str(server.home / "data"),
            "CERTS_DIR": str(server.home / "certs"),
            "POSTGRES_IMAGE": server.images["postgres"],
            "HASURA_IMAGE": server.images["hasura"],
            "TRAEFIK_IMAGE": server.images["traefik"],
            "SOCKET_PROXY_IMAGE": server.images["socket-proxy"],
            "HTTP_PORT": str(server.http_port),
            "HTTPS_PORT": str(server.https_port),
        },
    )


def write_literal_auth(server: Server) -> None:
    """Write the label overlay and the file-provider config with literal hashes."""
    from lhd import htpasswd

    for place in ("label", "file"):
        server.auths[place] = [
            Auth(f"{place}-{scheme}", secrets.token_urlsafe(12), scheme)
            for scheme in htpasswd.SCHEMES
        ]
    label_users = ",".join(
        htpasswd.for_compose_label(htpasswd.entry(a.user, a.password, a.scheme))
        for a in server.auths["label"]
    )
    (server.project / "Docker" / TEST_OVERLAY).write_text(
        TEST_OVERLAY_TEMPLATE.format(host=LABEL_AUTH_HOST, users=label_users)
    )
    file_users = "\n".join(
        f"          - '{htpasswd.entry(a.user, a.password, a.scheme)}'"
        for a in server.auths["file"]
    )
    (server.home / "data" / "traefik" / "dynamic" / "lhdtest-auth.yml").write_text(
        FILE_AUTH_TEMPLATE.format(host=FILE_AUTH_HOST, users=file_users)
    )


def remove_stack(docker_engine) -> None:
    subprocess.run(["docker", "stack", "rm", STACK], capture_output=True, timeout=120)
    deadline = time.monotonic() + 120
    label = f"com.docker.stack.namespace={STACK}"
    while time.monotonic() < deadline:
        containers = docker_engine.containers.list(all=True, filters={"label": label})
        networks = docker_engine.networks.list(filters={"label": label})
        if not containers and not networks:
            return
        time.sleep(2)


@pytest.fixture(scope="module")
def server(tmp_path_factory, test_images, docker_engine):
    ensure_swarm(docker_engine)
    remove_stack(docker_engine)
    project = copy_fixture_app(tmp_path_factory.mktemp("swarm") / "fixture_app")
    generate(project, stack_name=STACK, app_domain=DOMAIN)
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "Add LHD")

    home = tmp_path_factory.mktemp("server") / STACK
    for folder in ("data/postgres", "data/traefik/dynamic", "certs", "releases"):
        (home / folder).mkdir(parents=True)
    write_certificate(home / "certs")

    build_lucky_images(project, test_images, docker_engine)
    server = Server(home, project, free_port(), free_port())
    for role in ("postgres", "hasura", "traefik", "socket-proxy"):
        server.images[role] = image_id(docker_engine, test_images[role])
    for tag in ("one", "two", "unhealthy"):
        server.images[f"lucky-{tag}"] = image_id(docker_engine, f"lhdtest/lucky:{tag}")
    write_env_file(server, tls=True)
    write_literal_auth(server)
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "Add the test overlay")

    try:
        # First deploy: the stack first, so postgres and the migrations
        # network exist, then the migration container.
        server.deploy(server.images["lucky-one"], VERSION_ONE)
        wait_for_postgres(docker_engine)
        output = server.migrate(server.images["lucky-one"], VERSION_ONE)
        assert f"app_version {VERSION_ONE}" in output
        wait_converged(docker_engine)
        wait_for_version(server, VERSION_ONE)
        yield server
    finally:
        remove_stack(docker_engine)
        for tag in ("unhealthy", "two", "one"):
            subprocess.run(
                ["docker", "rmi", f"lhdtest/lucky:{tag}"], capture_output=True
            )


def wait_for_postgres(docker_engine) -> None:
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    while time.monotonic() < deadline:
        postgres = stack_services(docker_engine).get("postgres")
        if postgres is not None and running_tasks(postgres):
            return
        time.sleep(2)
    pytest.fail("postgres never became healthy")


def test_graphql_routed_to_hasura(server):
    secret = read_env(server)["HASURA_GRAPHQL_ADMIN_SECRET"]
    with client_for(server) as client:
        response = client.post(
            "/v1/graphql",
            headers={"Host": API_HOST, "x-hasura-admin-secret": secret},
            json={"query": "{ __typename }"},
        )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "query_root"}}


def test_version_routed_to_lucky(server):
    with client_for(server) as client:
        response = client.get("/version", headers={"Host": API_HOST})
    assert response.status_code == 200
    assert response.json() == {"version": VERSION_ONE}


def test_lucky_service_carries_app_version(server, docker_engine):
    lucky = stack_services(docker_engine)["lucky"]
    environment = lucky.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert f"APP_VERSION={VERSION_ONE}" in environment


def test_http_redirects_to_https(server):
    with client_for(server, tls=False) as client:
        response = client.get("/version", headers={"Host": API_HOST})
    assert response.status_code in (301, 308)
    assert response.headers["location"].startswith(f"https://{API_HOST}")


def test_https_serves_test_certificate(server):
    context = tls_context(server)
    with socket.create_connection(("127.0.0.1", server.https_port), timeout=5) as raw:
        with context.wrap_socket(raw) as wrapped:
            served = wrapped.getpeercert(binary_form=True)
    expected = ssl.PEM_cert_to_DER_cert(server.certificate.read_text())
    assert served == expected


def auth_cases():
    cases = [("dashboard", DASHBOARD_HOST, 0)]
    for place, host in (("label", LABEL_AUTH_HOST), ("file", FILE_AUTH_HOST)):
        cases += [(place, host, index) for index in range(2)]
    return cases


@pytest.mark.parametrize(
    ("place", "host", "index"),
    auth_cases(),
    ids=["env-bcrypt", "label-bcrypt", "label-apr1", "file-bcrypt", "file-apr1"],
)
def test_dashboard_basic_auth(server, place, host, index):
    auth = server.auths[place][index]
    with client_for(server) as client:
        anonymous = client.get("/dashboard/", headers={"Host": host})
        wrong = client.get(
            "/dashboard/", headers={"Host": host}, auth=(auth.user, "wrong-password")
        )
        right = client.get(
            "/dashboard/", headers={"Host": host}, auth=(auth.user, auth.password)
        )
    assert anonymous.status_code == 401
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert "Traefik" in right.text


@dataclass
class RequestLoop:
    """Bounded GET /version loop through Traefik, run in a thread."""

    server: Server
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    versions: set[str] = field(default_factory=set)

    def run(self) -> None:
        started = time.monotonic()
        with client_for(self.server) as client:
            while (
                not self.stop.is_set()
                and self.sent < ROLLING_MAX_REQUESTS
                and time.monotonic() - started < ROLLING_MAX_SECONDS
            ):
                self.sent += 1
                try:
                    response = client.get("/version", headers={"Host": API_HOST})
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                else:
                    if response.status_code == 200:
                        self.versions.add(response.json()["version"])
                    else:
                        self.failures.append(
                            f"{response.status_code} {response.text[:100]}"
                        )
                time.sleep(REQUEST_INTERVAL)


def test_rolling_update_loses_no_request(server, docker_engine):
    services = stack_services(docker_engine)
    traefik_tasks = {task["ID"] for task in running_tasks(services["traefik"])}
    lucky_tasks = {task["ID"] for task in running_tasks(services["lucky"])}

    loop = RequestLoop(server)
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        # Additive deploy: migrate, then update the services.
        server.migrate(server.images["lucky-two"], VERSION_TWO)
        server.deploy(server.images["lucky-two"], VERSION_TWO)
        wait_update(services["lucky"], {"completed"})
        wait_update(services["hasura"], {"completed"})
        time.sleep(3)
    finally:
        loop.stop.set()
        thread.join(timeout=30)

    print(f"rolling update: {loop.sent} requests, {len(loop.failures)} failed")
    assert loop.failures == []
    assert loop.sent > 100
    assert VERSION_TWO in loop.versions
    services = stack_services(docker_engine)
    lucky = services["lucky"]
    assert (
        lucky.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        == (server.images["lucky-two"])
    )
    assert {task["ID"] for task in running_tasks(lucky)}.isdisjoint(lucky_tasks)
    assert {t["ID"] for t in running_tasks(services["traefik"])} == traefik_tasks


def test_failing_health_check_rolls_back(server, docker_engine):
    lucky = stack_services(docker_engine)["lucky"]
    before = {task["ID"] for task in running_tasks(lucky)}

    server.deploy(server.images["lucky-unhealthy"], VERSION_BROKEN)
    state = wait_update(lucky, {"rollback_completed", "rollback_paused", "paused"})

    assert state == "rollback_completed"
    lucky.reload()
    spec = lucky.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert spec["Image"] == server.images["lucky-two"]
    assert f"APP_VERSION={VERSION_TWO}" in spec["Env"]
    assert {task["ID"] for task in running_tasks(lucky)} == before
    with client_for(server) as client:
        response = client.get("/version", headers={"Host": API_HOST})
    assert response.status_code == 200
    assert response.json() == {"version": VERSION_TWO}


def test_tls_off_serves_plain_http(server, docker_engine):
    from lhd import envfile

    envfile.update(server.env_file, {"TLS": "false"})
    server.deploy(server.images["lucky-two"], VERSION_TWO)
    wait_converged(docker_engine)
    wait_for_version(server, VERSION_TWO, tls=False)

    with client_for(server, tls=False) as client:
        version = client.get("/version", headers={"Host": API_HOST})
        dashboard = client.get(
            "/dashboard/",
            headers={"Host": DASHBOARD_HOST},
            auth=(
                server.auths["dashboard"][0].user,
                server.auths["dashboard"][0].password,
            ),
        )
    assert version.status_code == 200
    assert version.json() == {"version": VERSION_TWO}
    assert dashboard.status_code == 200


def read_env(server: Server) -> dict[str, str]:
    from lhd import envfile

    return envfile.read(server.env_file)
