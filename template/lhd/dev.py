"""Steps of the development and test stacks, in the order `inv` runs them."""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from lhd import compose, containers, devenv, engine, readiness
from lhd.compose import Compose
from lhd.errors import LhdError
from lhd.runner import Runner, stdin_is_terminal
from lhd.settings import Settings

# Lucky tasks that prepare a database, in order; seeds are written to be
# run again without harm.
DEV_DB_TASKS = (
    "db.create",
    "db.migrate",
    "db.seed.required_data",
    "db.seed.sample_data",
)
TEST_DB_TASKS = ("db.create", "db.migrate")
# Runs each argument as a Lucky task in one container, so a project whose
# `lucky` compiles tasks.cr pays for one container start, not four.
LUCKY_TASKS_SCRIPT = 'for task in "$@"; do lucky "$task"; done'

SERVICES = ("postgres", "hasura", "lucky")
HASURA_PORT = 8080
CONSOLE_PORT = 9695
CONSOLE_API_PORT = 9693
LUCKY_PORT = 5000


def lucky_tasks_command(tasks: Sequence[str]) -> list[str]:
    return ["sh", "-ec", LUCKY_TASKS_SCRIPT, "lucky-tasks", *tasks]


def host_address(env: dict[str, str]) -> str:
    """Return the address to reach published ports from this machine.

    With a remote engine (`DOCKER_HOST=tcp://docker:2376`, as in GitLab's
    Docker-in-Docker service) ports are published on the engine's host.
    """
    from urllib.parse import urlsplit

    engine_url = urlsplit(os.environ.get("DOCKER_HOST", ""))
    if engine_url.scheme in ("tcp", "http", "https") and engine_url.hostname:
        return engine_url.hostname
    import ipaddress

    address = env.get("BIND_ADDRESS") or "127.0.0.1"
    # Compose's short port syntax (ADDRESS:HOST:CONTAINER) takes IPv4 only.
    try:
        parsed = ipaddress.IPv4Address(address)
    except ValueError as error:
        raise LhdError(
            f"BIND_ADDRESS={address!r} in .env is not an IPv4 address: use "
            "127.0.0.1 (this machine only) or 0.0.0.0 (every interface)."
        ) from error
    return "127.0.0.1" if parsed.is_unspecified else address


class Stack:
    """One Compose project of this app: development or test."""

    def __init__(
        self, runner: Runner, settings: Settings, project: str, files: Sequence[str]
    ):
        self.runner = runner
        self.settings = settings
        self.project = project
        self.file_names = tuple(files)

    @functools.cached_property
    def compose(self) -> Compose:
        return Compose(
            command=engine.compose_command(),
            project=self.project,
            files=compose.project_files(self.settings.compose_dir, self.file_names),
            env_file=self.settings.env_file,
        )

    def run(self, argv: Sequence[str], what: str, **options):
        return self.runner.run(argv, what=what, **options)

    def start(self, services: Sequence[str] = ()) -> None:
        self.run(
            self.compose.up(services),
            what=f"Starting {', '.join(services) or 'all services'}",
        )

    def recreate_app(self) -> None:
        """Recreate the lucky container with fresh anonymous volumes.

        On a plain recreate Compose carries the anonymous volumes over, and
        the old shard folders would hide the ones in a rebuilt image. Only
        the lucky service is renewed, so no other container loses data.
        """
        self.run(
            self.compose.up(["lucky"], renew_anon_volumes=True, no_deps=True),
            what="Recreating the lucky container",
        )

    def wait_for_postgres(self, timeout: float) -> float:
        return readiness.wait_for(
            containers.postgres_ready(self.project),
            what=f"Postgres in {self.project}",
            timeout=timeout,
            diagnostics=lambda: containers.last_logs(self.project, "postgres"),
        )

    def wait_for_url(self, service: str, url: str, timeout: float) -> float:
        check = readiness.http_ok(url)

        def check_running_then_url() -> None:
            containers.require_running(self.project, service)
            check()

        return readiness.wait_for(
            check_running_then_url,
            what=f"{service} at {url}",
            timeout=timeout,
            diagnostics=lambda: containers.last_logs(self.project, service),
        )

    def compose_port(self, service: str, port: int, timeout: float) -> int:
        """Return the host port that `port` of `service` is published on."""
        found: list[int] = []

        def check() -> None:
            found.append(containers.published_port(self.project, service, port))

        readiness.wait_for(
            check,
            what=f"the published port {port} of {service}",
            timeout=timeout,
            diagnostics=lambda: containers.last_logs(self.project, service),
        )
        return found[-1]

    def lucky_tasks(self, tasks: Sequence[str]) -> None:
        """Run Lucky tasks in the running app container, or in a one-off one."""
        command = lucky_tasks_command(tasks)
        tty = stdin_is_terminal()
        if containers.running(self.project, "lucky"):
            argv = self.compose.exec("lucky", command, tty=tty)
        else:
            argv = self.compose.run("lucky", command, tty=tty)
        self.run(argv, what=f"Lucky tasks {' '.join(tasks)}")

    def remove(self, volumes: bool) -> None:
        self.run(
            self.compose.remove_containers(), what="Removing containers", hide=True
        )
        self.run(
            self.compose.down(volumes=volumes), what="Removing the stack", hide=True
        )


def build_args(env: dict[str, str]) -> dict[str, str]:
    """Return the build arguments of the development image set in `.env`."""
    return {"CRYSTAL_IMAGE": env["CRYSTAL_IMAGE"]} if env.get("CRYSTAL_IMAGE") else {}


def production_build_args(env: dict[str, str]) -> dict[str, str]:
    """Return the build arguments of the production image set in `.env`."""
    names = ("CRYSTAL_IMAGE", "CRYSTAL_BUILD_FLAGS")
    return {name: env[name] for name in names if env.get(name)}


def dev_stack(runner: Runner, settings: Settings) -> Stack:
    return Stack(runner, settings, settings.project_name, compose.DEV_FILES)


def test_stack(runner: Runner, settings: Settings, image: str | None) -> Stack:
    files = compose.TEST_FILES + ((compose.IMAGE_OVERRIDE,) if image else ())
    return Stack(runner, settings, settings.test_project, files)


def prepare(settings: Settings, app: bool = False) -> dict[str, str]:
    """Create or refresh `.env`, then check the engine and Compose.

    With `app`, for tasks that build or start the app, also check that the
    project is a Lucky project and that its JWT key is long enough. The
    other tasks (down, logs, status) skip these checks, so they work while
    those problems are being fixed.
    """
    env = devenv.sync(settings, check_key=app)
    if app and not (settings.root / "shard.yml").is_file():
        raise LhdError(
            f"No shard.yml in {settings.root}: LHD runs a Lucky project. Create "
            "one with `lucky init.custom NAME --api` and generate LHD into it, "
            "or copy your Lucky app's files here."
        )
    engine.client()
    engine.compose_command()
    return env


def url_host(address: str) -> str:
    """Return `address` as the host part of a URL (IPv6 in brackets)."""
    return f"[{address}]" if ":" in address else address


@contextmanager
def test_run_lock(settings: Settings) -> Iterator[None]:
    """Allow one `inv test` per project at a time: they share one Compose project."""
    try:
        import fcntl
    except ImportError:  # Windows has no fcntl; runs there are not serialised.
        yield
        return
    settings.state_dir.mkdir(exist_ok=True)
    path = settings.state_dir / "test.lock"
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise LhdError(
                f"Another `inv test` of this project is running: it holds {path}. "
                f"Wait for it to finish; test runs share the Compose project "
                f"{settings.test_project}."
            ) from error
        yield


def require_running(project: str, service: str) -> None:
    """Raise LhdError unless the development service is running."""
    if not containers.running(project, service):
        raise LhdError(
            f"The {service} service of {project} is not running: start the "
            "stack with `inv up --detach` first."
        )


def start_console(stack: Stack, env: dict[str, str], timeout: float) -> str:
    """Start the Hasura CLI console and turn its migration mode off."""
    import httpx

    host = url_host(host_address(env))
    console_port = env.get("HASURA_CONSOLE_PORT") or str(CONSOLE_PORT)
    api_port = env.get("HASURA_CONSOLE_API_PORT") or str(CONSOLE_API_PORT)
    hasura_port = env.get("HASURA_PORT") or str(HASURA_PORT)
    settings_url = f"http://{host}:{api_port}/apis/migrate/settings"
    try:
        already_running = httpx.get(settings_url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        already_running = False
    if not already_running:
        # The browser calls the console API and Hasura on the host's published
        # ports. So the console listens on the same port numbers inside the
        # container, and --console-hge-endpoint gives it Hasura's host URL.
        command = [
            "hasura-cli", "console",
            "--address", "0.0.0.0",
            "--no-browser",
            "--console-port", console_port,
            "--api-port", api_port,
            "--api-host", f"http://{host}",
            "--endpoint", f"http://localhost:{HASURA_PORT}",
            "--console-hge-endpoint", f"http://{host}:{hasura_port}",
            "--skip-update-check",
        ]  # fmt: skip
        # The CLI reads the admin secret from HASURA_GRAPHQL_ADMIN_SECRET in
        # the container environment, so it stays off the command line.
        stack.run(
            stack.compose.exec("hasura", command, tty=False, detach=True),
            what="Starting the Hasura console",
        )
        stack.wait_for_url("hasura", settings_url, timeout)
    # Lucky owns the schema: Hasura must not write migrations of its own.
    response = httpx.put(
        settings_url, json={"name": "migration_mode", "value": "false"}, timeout=5.0
    )
    response.raise_for_status()
    return f"http://{host}:{console_port}"


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ignore Ctrl-C, SIGTERM and SIGHUP during cleanup, so none cuts it short."""
    numbers = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def passthrough_args() -> list[str]:
    """Return the arguments after `--` on the command line, unsplit and unjoined."""
    import sys

    argv = sys.argv
    return argv[argv.index("--") + 1 :] if "--" in argv else []


def image_env(reference: str | None) -> dict[str, str]:
    return {"LUCKY_IMAGE": reference} if reference else {}


def with_env(values: dict[str, str]):
    """Set environment variables for Compose interpolation in this process."""
    os.environ.update(values)
