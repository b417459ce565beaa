"""The monitoring stack (`fab swarmprom`): upload the files of
`Docker/monitoring/` at one commit to the server, `docker stack deploy`
them as `<stack>_monitoring` with the variables of `.env.production`, and
wait until every service runs its desired number of tasks.

The command builders are pure; `deploy` runs them through a runner with the
interface of `lhd.remote.RemoteRunner` (`run`, `output` and `put`).
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lhd import commits, readiness, ui
from lhd.errors import LhdError
from lhd.remote import with_env_file
from lhd.server import ServerPaths

MONITORING_DIR = "Docker/monitoring"
COMPOSE_FILE = f"{MONITORING_DIR}/compose.yml"
CONFIG_VERSION_VARIABLE = "MONITORING_CONFIG_VERSION"
STACK_LABEL = "com.docker.stack.namespace"
RESOLVE_IMAGE_CHOICES = ("always", "changed", "never")
# Seconds between two polls of the service states while waiting.
POLL_INTERVAL = 2.0
REPLICAS = re.compile(r"(\d+)/(\d+)")
# Update states of `docker service inspect` after which a service will not
# reach the new specification without another deploy.
FAILED_UPDATE_STATES = ("paused", "rollback_started", "rollback_completed")


def monitoring_stack(stack: str) -> str:
    return f"{stack}_monitoring"


def public_network(stack: str) -> str:
    return f"{stack}_public"


# Local side: the files of one commit


@dataclass(frozen=True)
class Release:
    """The monitoring files of one commit, as a tar archive."""

    version: str
    archive: bytes

    @property
    def config_version(self) -> str:
        return config_version(self.archive)


def config_version(archive: bytes) -> str:
    """Return a 12-digit digest of the names, modes and contents in `archive`.

    The digest ignores the commit time that `git archive` stores, so the
    swarm config names stay the same while the files do not change.
    """
    digest = hashlib.sha256()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = sorted(
            (member for member in tar.getmembers() if member.isfile()),
            key=lambda member: member.name,
        )
        for member in members:
            content = tar.extractfile(member).read()
            digest.update(f"{member.name}\0{member.mode:o}\0{len(content)}\0".encode())
            digest.update(content)
    return digest.hexdigest()[:12]


def read_release(root: Path, commit: str = "HEAD") -> Release:
    """Return the monitoring files of `commit` in the project at `root`."""
    sha = commits.resolve(root, commit)
    version = commits.short(root, sha)
    archive = commits.run_git(
        root, "archive", "--format=tar", sha, "--", MONITORING_DIR, binary=True
    )
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = tar.getnames()
    if COMPOSE_FILE not in names:
        raise LhdError(
            f"Commit {version} has no {COMPOSE_FILE}. Generate the project with "
            "monitoring (`copier update`, answer yes to include_monitoring) "
            "and commit the files."
        )
    return Release(version=version, archive=archive)


def warn_local_changes(root: Path) -> None:
    changed = commits.run_git(root, "status", "--porcelain", "--", MONITORING_DIR)
    if changed:
        ui.warn(
            f"{MONITORING_DIR} has uncommitted changes, which are not deployed: "
            "commit them and run the task again to deploy them."
        )


# Server side: command builders


def network_exists_command(network: str) -> list[str]:
    return ["docker", "network", "inspect", "--format", "{{.Name}}", network]


def deploy_command(
    env_file: str,
    compose_file: str,
    stack: str,
    config_version: str,
    resolve_image: str = "always",
) -> list[str]:
    """Return `docker stack deploy` run with the variables of `env_file`.

    `resolve_image` is passed to `--resolve-image`: `always` records the
    registry digest of every image, `never` uses local images as they are.
    """
    if resolve_image not in RESOLVE_IMAGE_CHOICES:
        raise LhdError(
            f"Invalid --resolve-image value {resolve_image!r}: use one of "
            f"{', '.join(RESOLVE_IMAGE_CHOICES)}."
        )
    deploy = [
        "docker",
        "stack",
        "deploy",
        "--detach=true",
        "--prune",
        "--with-registry-auth",
        "--resolve-image",
        resolve_image,
        "--compose-file",
        compose_file,
        stack,
    ]
    return with_env_file(env_file, deploy, {CONFIG_VERSION_VARIABLE: config_version})


def list_services_command(stack: str) -> list[str]:
    return [
        "docker",
        "service",
        "ls",
        "--filter",
        f"label={STACK_LABEL}={stack}",
        "--format",
        "{{json .}}",
    ]


def inspect_services_command(names: Sequence[str]) -> list[str]:
    return ["docker", "service", "inspect", *names]


def stack_tasks_command(stack: str) -> list[str]:
    return [
        "docker",
        "stack",
        "ps",
        "--no-trunc",
        "--format",
        "{{.Name}}  {{.CurrentState}}  {{.Error}}",
        stack,
    ]


def list_configs_command(stack: str) -> list[str]:
    return [
        "docker",
        "config",
        "ls",
        "--filter",
        f"label={STACK_LABEL}={stack}",
        "--format",
        "{{.Name}}",
    ]


def remove_configs_command(names: Sequence[str]) -> list[str]:
    return ["docker", "config", "rm", *names]


# Server side: upload, deploy, wait


def upload(runner, paths: ServerPaths, release: Release) -> str:
    """Write the monitoring files of `release` into its release folder.

    Replaces `Docker/monitoring/` of `releases/<version>/`, so files deleted
    in the commit disappear, and returns the absolute compose file path.
    """
    release_dir = paths.release_dir(release.version)
    archive_path = posixpath.join(release_dir, ".monitoring.tar")
    runner.run(["mkdir", "-p", release_dir], hide=True, what="Creating " + release_dir)
    runner.run(
        ["rm", "-rf", posixpath.join(release_dir, MONITORING_DIR)],
        hide=True,
        what="Removing the previous monitoring files",
    )
    runner.put(release.archive, archive_path)
    runner.run(
        ["tar", "-x", "-f", archive_path, "-C", release_dir],
        hide=True,
        what="Unpacking the monitoring files",
    )
    runner.run(["rm", "-f", archive_path], hide=True, what="Removing the archive")
    return posixpath.join(release_dir, COMPOSE_FILE)


def check_prerequisites(runner, paths: ServerPaths) -> None:
    """Raise LhdError unless `.env.production` and `<stack>_public` exist."""
    if not runner.run(["test", "-f", paths.env_file], hide=True, check=False).ok:
        raise LhdError(
            f"{paths.env_file} not found on the server. Run `fab bootstrap` "
            "first; it writes the settings the monitoring stack reads."
        )
    network = public_network(paths.stack)
    if not runner.run(network_exists_command(network), hide=True, check=False).ok:
        raise LhdError(
            f"The swarm network {network} does not exist: the monitoring stack "
            "joins the network of the app stack. Deploy the app first with "
            "`fab deploy --subtractive`."
        )


@dataclass(frozen=True)
class ServiceState:
    """Tasks of one swarm service: running and desired, and its update state."""

    name: str
    mode: str
    running: int
    desired: int
    update_state: str

    @property
    def converged(self) -> bool:
        # A global service shows 0/0 while swarm has no task scheduled on
        # any node, for example while its tasks keep failing to start.
        if self.desired < 0 or (self.mode == "global" and self.desired == 0):
            return False
        return self.running >= self.desired and self.update_state != "updating"


def parse_services(listing: str, inspection: str) -> list[ServiceState]:
    """Combine `docker service ls` JSON lines and `docker service inspect` JSON."""
    update_states = {}
    for service in json.loads(inspection or "[]"):
        status = service.get("UpdateStatus") or {}
        update_states[service["Spec"]["Name"]] = status.get("State", "")
    states = []
    for line in listing.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        match = REPLICAS.match(row.get("Replicas", ""))
        running, desired = (int(match[1]), int(match[2])) if match else (0, -1)
        name = row["Name"]
        states.append(
            ServiceState(
                name=name,
                mode=row.get("Mode", ""),
                running=running,
                desired=desired,
                update_state=update_states.get(name, ""),
            )
        )
    return sorted(states, key=lambda state: state.name)


def read_services(runner, stack: str) -> list[ServiceState]:
    listing = runner.output(list_services_command(stack), what="Listing services")
    names = [json.loads(line)["Name"] for line in listing.splitlines() if line.strip()]
    if not names:
        return []
    inspection = runner.output(
        inspect_services_command(names), what="Inspecting services"
    )
    return parse_services(listing, inspection)


def convergence_check(runner, stack: str, services: Sequence[str] | None = None):
    """Return a check that passes when the services of `stack` converged.

    `services` limits the check to those short names (such as `prometheus`);
    by default every service of the stack must run all its desired tasks.

    NOTE: a service whose update swarm has not started yet still shows its
    old tasks as running. The check relies on swarm marking the update as
    `updating` before the first poll, which follows the deploy command.
    """

    def check() -> None:
        states = read_services(runner, stack)
        if not states:
            raise readiness.NotReady(f"stack {stack} has no services yet")
        if services is not None:
            expected = {f"{stack}_{name}" for name in services}
            missing = expected - {state.name for state in states}
            if missing:
                raise readiness.NotReady(f"no service {', '.join(sorted(missing))}")
            states = [state for state in states if state.name in expected]
        for state in states:
            if state.update_state in FAILED_UPDATE_STATES:
                raise readiness.Failed(
                    f"the update of {state.name} ended in {state.update_state}"
                )
        pending = [
            f"{state.name} {state.running}/{state.desired}"
            for state in states
            if not state.converged
        ]
        if pending:
            raise readiness.NotReady("tasks running/desired: " + ", ".join(pending))

    return check


def stack_diagnostics(runner, stack: str):
    def collect() -> str:
        result = runner.run(stack_tasks_command(stack), hide=True, check=False)
        return f"Tasks of {stack}:\n{result.stdout}"

    return collect


def prune_configs(runner, stack: str, config_version: str) -> int:
    """Remove the stack's swarm configs of other versions; return how many.

    Configs that a task still uses stay, because `docker config rm` rejects
    them; the next deploy removes them.
    """
    names = runner.output(list_configs_command(stack), what="Listing configs").split()
    stale = [name for name in names if not name.endswith(f"_{config_version}")]
    if not stale:
        return 0
    result = runner.run(remove_configs_command(stale), hide=True, check=False)
    if not result.ok:
        ui.warn(f"Some old configs of {stack} are still in use and were kept.")
    remaining = runner.output(list_configs_command(stack), what="Listing configs")
    return len(set(stale) - set(remaining.split()))


def deploy(
    runner,
    paths: ServerPaths,
    release: Release,
    wait: float = 300,
    resolve_image: str = "always",
) -> float:
    """Upload `release`, deploy the monitoring stack and wait until it converged.

    Returns the seconds spent waiting; `wait=0` returns right after the
    deploy command. Raises LhdError when a service has not converged within
    `wait` seconds or its update rolled back.
    """
    stack = monitoring_stack(paths.stack)
    check_prerequisites(runner, paths)
    ui.step(f"Uploading the monitoring files of {release.version}")
    compose_file = upload(runner, paths, release)
    ui.step(f"Deploying the stack {stack}")
    runner.run(
        deploy_command(
            paths.env_file,
            compose_file,
            stack,
            release.config_version,
            resolve_image=resolve_image,
        ),
        what=f"docker stack deploy of {stack}",
    )
    if wait <= 0:
        return 0.0
    started = time.monotonic()
    readiness.wait_for(
        convergence_check(runner, stack),
        f"the services of {stack}",
        timeout=wait,
        diagnostics=stack_diagnostics(runner, stack),
        interval=POLL_INTERVAL,
    )
    waited = time.monotonic() - started
    removed = prune_configs(runner, stack, release.config_version)
    ui.done(
        f"{stack} runs {release.version} (configs {release.config_version}); "
        f"removed {removed} old configs."
    )
    return waited
