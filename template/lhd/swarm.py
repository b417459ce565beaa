"""The production stack on Docker Swarm: command builders, and the wait
until every service has converged on what was deployed.

Convergence is read from `docker service inspect` (UpdateStatus, the spec's
image and replica count) and `docker service ps` (task states and errors).
A service with a health check has its task in state "starting" until the
check passes, so "running" means healthy.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from lhd import readiness
from lhd.errors import LhdError
from lhd.remote import RemoteRunner, with_env_file

STACK_FILES = ("compose.yml", "compose.prod.yml", "compose.swarm.yml")
STACK_LABEL = "com.docker.stack.namespace"
ROLLBACK_STATES = ("rollback_started", "rollback_paused", "rollback_completed")
WAIT_INTERVAL = 2.0  # seconds between convergence checks
APP_SERVICES = ("lucky", "hasura")


def service_name(stack: str, service: str) -> str:
    return f"{stack}_{service}"


def stack_files(release_dir: str) -> list[str]:
    return [posixpath.join(release_dir, "Docker", name) for name in STACK_FILES]


def traefik_config_argvs(release_dir: str, data_dir: str) -> list[list[str]]:
    """Return the commands that copy the release's Traefik file-provider config.

    Traefik mounts ${DATA_DIR}/traefik/dynamic, a folder outside the release,
    so its service spec (and so the Traefik task) stays the same between
    releases while the files in it change.
    """
    source = posixpath.join(release_dir, "Docker", "traefik", "dynamic")
    target = posixpath.join(data_dir, "traefik", "dynamic")
    # NOTE: a file removed from the release stays in the target folder.
    return [["mkdir", "-p", target], ["cp", "-R", f"{source}/.", f"{target}/"]]


def deploy_env(image: str, version: str, release_dir: str) -> dict[str, str]:
    """Return the per-deploy variables; none is secret."""
    return {"LUCKY_IMAGE": image, "APP_VERSION": version, "RELEASE_DIR": release_dir}


def deploy_argv(
    stack: str, files: Sequence[str], resolve_image: str = "always"
) -> list[str]:
    argv = ["docker", "stack", "deploy", "--detach=true", "--prune"]
    argv += ["--with-registry-auth", "--resolve-image", resolve_image]
    for path in files:
        argv += ["--compose-file", path]
    return [*argv, stack]


def services_argv(stack: str, output_format: str = "{{.Name}}") -> list[str]:
    return [
        "docker", "service", "ls",
        "--filter", f"label={STACK_LABEL}={stack}",
        "--format", output_format,
    ]  # fmt: skip


def inspect_argv(names: Sequence[str]) -> list[str]:
    return ["docker", "service", "inspect", *names]


def tasks_argv(name: str) -> list[str]:
    return ["docker", "service", "ps", "--no-trunc", "--format", "{{json .}}", name]


def scale_argv(replicas: dict[str, int]) -> list[str]:
    assignments = [f"{name}={count}" for name, count in replicas.items()]
    return ["docker", "service", "scale", "--detach=false", *assignments]


def logs_argv(name: str, follow: bool, tail: str) -> list[str]:
    argv = ["docker", "service", "logs", "--timestamps", "--tail", str(tail)]
    if follow:
        argv.append("--follow")
    return [*argv, name]


def without_digest(image: str) -> str:
    return image.split("@", 1)[0]


@dataclass(frozen=True)
class ServiceState:
    """The state of one service: converged, still updating, or failed."""

    name: str
    converged: bool
    failed: bool
    reason: str


def replicas_of(spec: dict) -> int | None:
    mode = spec.get("Mode", {})
    if "Replicated" in mode:
        return int(mode["Replicated"].get("Replicas", 1))
    return None


def task_errors(tasks: Sequence[dict], limit: int = 3) -> list[str]:
    """Return the newest distinct task errors, newest first."""
    errors: list[str] = []
    for task in tasks:
        error = task.get("Error", "").strip()
        if error and error not in errors:
            errors.append(error)
    return errors[:limit]


def service_state(
    service: dict,
    tasks: Sequence[dict],
    since: str,
    expected_image: str | None = None,
) -> ServiceState:
    """Judge one service from its inspect JSON and its `service ps` lines.

    `since` is the server's UTC time (ISO 8601) when the deploy started; an
    UpdateStatus that started before it belongs to an earlier deploy.
    """
    spec = service["Spec"]
    name = spec["Name"]
    image = without_digest(spec["TaskTemplate"]["ContainerSpec"]["Image"])
    update = service.get("UpdateStatus") or {}
    state = update.get("State", "")
    recent = update.get("StartedAt", "")[:19] >= since[:19]
    errors = task_errors(tasks)
    detail = f" Last task errors: {'; '.join(errors)}" if errors else ""

    if expected_image and image != without_digest(expected_image):
        if state == "rollback_started":
            return ServiceState(name, False, False, f"{name} is rolling back")
        return ServiceState(
            name,
            False,
            True,
            f"{name} runs {image}, not {expected_image}: swarm rolled the "
            f"update back ({state or 'no update status'}).{detail}",
        )
    if recent and state in ROLLBACK_STATES:
        if state == "rollback_started":
            return ServiceState(name, False, False, f"{name} is rolling back")
        return ServiceState(
            name, False, True, f"{name}: swarm rolled the update back.{detail}"
        )
    if recent and state == "paused":
        return ServiceState(
            name,
            False,
            True,
            f"{name}: the update paused after failing: {update.get('Message', '')}."
            f"{detail}",
        )
    if state == "updating":
        return ServiceState(name, False, False, f"{name} is updating")

    wanted = replicas_of(spec)
    active = [task for task in tasks if task.get("DesiredState") == "Running"]
    running = [
        task
        for task in active
        if task.get("CurrentState", "").startswith("Running")
        and without_digest(task.get("Image", "")) == image
    ]
    if wanted is None:
        ok = bool(active) and len(running) == len(active)
        count = f"{len(running)}/{len(active)}"
    else:
        ok = len(running) >= wanted and len(active) == wanted
        count = f"{len(running)}/{wanted}"
    if ok:
        return ServiceState(name, True, False, f"{name} runs {count} tasks")
    return ServiceState(
        name, False, False, f"{name} has {count} healthy tasks running.{detail}"
    )


def parse_tasks(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


class Swarm:
    """The stack of one project on the server of `remote`."""

    def __init__(
        self,
        remote: RemoteRunner,
        stack: str,
        env_file: str,
        resolve_image: str = "always",
    ) -> None:
        self.remote = remote
        self.stack = stack
        self.env_file = env_file
        self.resolve_image = resolve_image

    def services(self) -> list[str]:
        output = self.remote.output(services_argv(self.stack), what="Listing services")
        return sorted(output.split())

    def exists(self) -> bool:
        return bool(self.services())

    def server_time(self) -> str:
        return self.remote.output(
            ["date", "-u", "+%Y-%m-%dT%H:%M:%S"], what="Reading the server clock"
        ).strip()

    def deploy(self, release_dir: str, data_dir: str, image: str, version: str) -> None:
        for argv in traefik_config_argvs(release_dir, data_dir):
            self.remote.run(argv, hide=True, what="Copying the Traefik configuration")
        argv = with_env_file(
            self.env_file,
            deploy_argv(self.stack, stack_files(release_dir), self.resolve_image),
            deploy_env(image, version, release_dir),
        )
        self.remote.run(argv, hide=True, what=f"Deploying the stack {self.stack}")

    def inspect(self, names: Sequence[str]) -> list[dict]:
        output = self.remote.output(inspect_argv(names), what="Inspecting services")
        return json.loads(output)

    def tasks(self, name: str) -> list[dict]:
        return parse_tasks(self.remote.output(tasks_argv(name), what="Listing tasks"))

    def states(
        self, names: Sequence[str], since: str, image: str | None
    ) -> list[ServiceState]:
        lucky = service_name(self.stack, "lucky")
        return [
            service_state(
                service,
                self.tasks(service["Spec"]["Name"]),
                since,
                image if service["Spec"]["Name"] == lucky else None,
            )
            for service in self.inspect(names)
        ]

    def wait(
        self,
        since: str,
        timeout: float,
        image: str | None = None,
        services: Sequence[str] | None = None,
    ) -> None:
        """Wait until `services` (default: all) converged; raise LhdError on failure.

        `image` is the Lucky image that was deployed: when the lucky service
        runs another one, swarm rolled it back.
        """
        names = (
            [service_name(self.stack, s) for s in services]
            if services
            else self.services()
        )

        def check() -> None:
            states = self.states(names, since, image)
            failed = [state.reason for state in states if state.failed]
            if failed:
                raise readiness.Failed("\n  ".join(failed))
            pending = [state.reason for state in states if not state.converged]
            if pending:
                raise readiness.NotReady("; ".join(pending))

        readiness.wait_for(
            check,
            what=f"the services of {self.stack} to converge",
            timeout=timeout,
            interval=WAIT_INTERVAL,
        )

    def replicas(self, services: Sequence[str]) -> dict[str, int]:
        names = [service_name(self.stack, s) for s in services]
        return {
            service["Spec"]["Name"]: replicas_of(service["Spec"]) or 1
            for service in self.inspect(names)
        }

    def scale(self, replicas: dict[str, int]) -> None:
        self.remote.run(
            scale_argv(replicas),
            hide=True,
            what=f"Scaling {', '.join(replicas)}",
        )

    def running_container(self, service: str) -> str:
        """Return the id of a running container of `service` on this node."""
        name = service_name(self.stack, service)
        argv = [
            "docker", "ps", "--quiet",
            "--filter", f"label=com.docker.swarm.service.name={name}",
            "--filter", "status=running",
        ]  # fmt: skip
        ids = self.remote.output(argv, what=f"Finding the {service} container").split()
        if not ids:
            raise LhdError(
                f"No running {service} container of {self.stack} on "
                f"{self.remote.host}: check `fab -H {self.remote.host} status`."
            )
        return ids[0]
