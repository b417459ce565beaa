"""Deploy and roll back: the steps, in the order each mode runs them.

Additive changes (new tables, columns, code that works with the old and the
new schema) migrate first and then replace the code, so the old code keeps
serving while the database changes. Subtractive changes (dropping what the
old code reads) replace the code first and migrate after it converged. The
first deploy is subtractive, because the stack must exist before a one-off
container can reach its database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lhd import backup, commits, dev, lock, prodenv, registry, release, ui
from lhd.errors import LhdError
from lhd.remote import RemoteRunner, with_env_file
from lhd.server import ServerPaths
from lhd.settings import Settings
from lhd.swarm import Swarm

MIGRATE_TASKS = ("db.create", "db.migrate", "db.seed.required_data")
# Variables a one-off Lucky container gets, by name, from .env.production.
LUCKY_VARIABLES = ("DATABASE_URL", "SECRET_KEY_BASE", "SEND_GRID_KEY", "APP_VERSION")
MIGRATION_STAMP = re.compile(r"^\d{14}$")
KEEP_IMAGES = 3


def deploy_plan(subtractive: bool, stack_exists: bool) -> tuple[str, ...]:
    """Return the deploy steps in order."""
    if not stack_exists:
        # No database to back up yet; the new app becomes healthy only once
        # migrated, so wait for postgres before migrating and for all after.
        return ("stack", "wait_database", "migrate", "wait")
    if subtractive:
        return ("backup", "stack", "wait", "migrate")
    return ("backup", "migrate", "stack", "wait")


def rollback_plan(subtractive: bool) -> tuple[str, ...]:
    """Return the rollback steps in order.

    Additive (the default) undoes an additive deploy: the old code first,
    because it works with the newer schema, then the database. Subtractive
    restores what the old code needs first, then the old code. After the
    database is rolled back, the old release's required data is seeded again.
    """
    if subtractive:
        return ("backup", "rollback_database", "seed", "stack", "wait")
    return ("backup", "stack", "wait", "rollback_database", "seed")


def migrations_network(stack: str) -> str:
    return f"{stack}_migrations"


def lucky_run_argv(
    stack: str, image: str, version: str, env_file: str, command: list[str]
) -> list[str]:
    """Return the argv of a one-off Lucky container on the migrations network.

    Its variables come by name from .env.production, so no value is on the
    command line.
    """
    inner = ["docker", "run", "--rm", "--network", migrations_network(stack)]
    for name in LUCKY_VARIABLES:
        inner += ["--env", name]
    inner += [image, *command]
    return with_env_file(env_file, inner, {"APP_VERSION": version})


def migrate_argv(stack: str, image: str, version: str, env_file: str) -> list[str]:
    return lucky_run_argv(
        stack, image, version, env_file, dev.lucky_tasks_command(MIGRATE_TASKS)
    )


def rollback_to_argv(
    stack: str, image: str, version: str, env_file: str, stamp: str
) -> list[str]:
    return lucky_run_argv(
        stack, image, version, env_file, ["lucky", "db.rollback_to", stamp]
    )


def seed_argv(stack: str, image: str, version: str, env_file: str) -> list[str]:
    return lucky_run_argv(
        stack, image, version, env_file, ["lucky", "db.seed.required_data"]
    )


def last_migration_argv(image: str) -> list[str]:
    return ["docker", "run", "--rm", image, "bin/last_migration"]


@dataclass
class Target:
    """One server and the stack of this project on it."""

    remote: RemoteRunner
    settings: Settings
    paths: ServerPaths
    resolve_image: str = "always"

    @property
    def swarm(self) -> Swarm:
        return Swarm(
            self.remote,
            self.settings.stack_name,
            self.paths.env_file,
            self.resolve_image,
        )

    @property
    def host(self) -> str:
        return self.remote.host


@dataclass
class Options:
    timeout: float = 600.0
    keep_releases: int = release.KEEP_RELEASES
    keep_backups: int = backup.KEEP_BACKUPS


class Run:
    """One deploy or rollback: what it deploys, and the steps by name."""

    def __init__(
        self, target: Target, version: str, image: str, options: Options
    ) -> None:
        self.target = target
        self.version = version
        self.image = image
        self.options = options
        self.since = ""
        self.backup_path: str | None = None
        self.rollback_image = ""
        self.rollback_stamp = ""

    @property
    def release_dir(self) -> str:
        return self.target.paths.release_dir(self.version)

    def execute(self, plan: tuple[str, ...]) -> None:
        for name in plan:
            getattr(self, f"step_{name}")()

    def step_backup(self) -> None:
        ui.step("Backing up the database")
        container = self.target.swarm.running_container("postgres")
        self.backup_path = backup.create(
            self.target.remote, self.target.paths, container, self.version
        )
        ui.done(f"Backup: {self.backup_path}")

    def step_migrate(self) -> None:
        ui.step(f"Migrating the database with {self.image}")
        argv = migrate_argv(
            self.target.settings.stack_name,
            self.image,
            self.version,
            self.target.paths.env_file,
        )
        result = self.target.remote.run(argv, check=False)
        if not result.ok:
            raise LhdError(self.migration_failure(result.exited))

    def migration_failure(self, exit_code: int) -> str:
        if self.stack_replaced:
            serving = f"The stack already runs {self.version}"
        else:
            serving = "The previous release keeps serving"
        if self.backup_path:
            saved = (
                f"The database was backed up to {self.backup_path} before the "
                "migration. If the failed migration left it half-changed, restore "
                f"it with `fab -H {self.target.host} restore {self.backup_path}`."
            )
        else:
            saved = "There was no database to back up before the migration."
        return (
            f"The migration of {self.version} failed (exit code {exit_code}; its "
            f"output is above). {serving}. {saved}"
        )

    @property
    def stack_replaced(self) -> bool:
        # The stack step sets `since`, so it is empty until the stack was deployed.
        return bool(self.since)

    def step_stack(self) -> None:
        ui.step(f"Deploying the stack {self.target.settings.stack_name}")
        self.since = self.target.swarm.server_time()
        self.target.swarm.deploy(
            self.release_dir, self.target.paths.data_dir, self.image, self.version
        )

    def step_wait_database(self) -> None:
        self.target.swarm.wait(self.since, self.options.timeout, services=["postgres"])

    def step_wait(self) -> None:
        self.target.swarm.wait(self.since, self.options.timeout, image=self.image)
        ui.done(f"Every service runs {self.version}")

    def step_rollback_database(self) -> None:
        ui.step(f"Rolling the database back to migration {self.rollback_stamp}")
        argv = rollback_to_argv(
            self.target.settings.stack_name,
            self.rollback_image,
            self.version,
            self.target.paths.env_file,
            self.rollback_stamp,
        )
        self.target.remote.run(argv, what="Rolling back the database")

    def step_seed(self) -> None:
        ui.step(f"Seeding the required data of {self.version}")
        argv = seed_argv(
            self.target.settings.stack_name,
            self.image,
            self.version,
            self.target.paths.env_file,
        )
        self.target.remote.run(argv, what="Seeding the required data")


def prepare_release(target: Target, root: Path, sha: str, version: str) -> str:
    """Upload the release of `sha` and return the image it runs with."""
    ui.step(f"Uploading release {version}")
    release.upload(target.remote, target.paths, root, sha, version)
    ui.step("Selecting the image")
    tags = commits.recent_tags(root, sha, registry.SEARCH_DEPTH)
    image = registry.select(
        target.settings.registry_image, tags, registry.pull_on(target.remote)
    )
    release.write_record(target.remote, target.paths, version, image)
    ui.done(f"Image: {image}")
    return image


def check_env(target: Target) -> None:
    values = prodenv.read_from(target.remote, target.paths)
    prodenv.require(values, target.paths.env_file, target.host)


def finish(target: Target, run: Run, options: Options) -> None:
    """Point `current` at the release, then prune old releases, images, backups."""
    release.switch(target.remote, target.paths, run.version)
    removed_releases = release.prune(
        target.remote, target.paths, options.keep_releases, [run.version]
    )
    kept_tags = [run.image.rsplit(":", 1)[-1], *recent_image_tags(target)]
    registry.prune(target.remote, target.settings.registry_image, kept_tags)
    backup.prune(target.remote, target.paths, options.keep_backups)
    if removed_releases:
        ui.done(f"Removed old releases {', '.join(removed_releases)}")


def recent_image_tags(target: Target) -> list[str]:
    """Return the image tags of the newest releases, so a rollback finds them local."""
    names = target.remote.output(
        release.list_argv(target.paths), what="Listing releases"
    ).split()
    tags = []
    for name in names[:KEEP_IMAGES]:
        record = release.read_record(target.remote, target.paths, name)
        if record and record.get("image"):
            tags.append(record["image"].rsplit(":", 1)[-1])
    return tags


def deploy(
    target: Target, root: Path, version: str, subtractive: bool, options: Options
) -> str:
    """Deploy commit `version`; return its 8-character tag."""
    sha = commits.resolve(root, version)
    tag = commits.short(root, sha)
    check_env(target)
    with lock.held(target.remote, target.paths, tag):
        stack_exists = target.swarm.exists()
        if not stack_exists and not subtractive:
            raise LhdError(
                f"The stack {target.settings.stack_name} does not exist on "
                f"{target.host} yet. The first deploy must be subtractive, so the "
                f"stack starts before it is migrated: run `fab -H {target.host} "
                f"deploy {version} --subtractive`."
            )
        image = prepare_release(target, root, sha, tag)
        run = Run(target, tag, image, options)
        run.execute(deploy_plan(subtractive, stack_exists))
        finish(target, run, options)
    return tag


def last_migration(remote: RemoteRunner, image: str) -> str:
    stamp = remote.output(
        last_migration_argv(image), what=f"Reading the newest migration of {image}"
    ).strip()
    if not MIGRATION_STAMP.match(stamp):
        raise LhdError(
            f"bin/last_migration in {image} printed {stamp!r}, not a 14-digit "
            "migration timestamp."
        )
    return stamp


def rollback(
    target: Target, root: Path, version: str, subtractive: bool, options: Options
) -> str:
    """Roll the code and the database back to commit `version`; return its tag."""
    sha = commits.resolve(root, version)
    tag = commits.short(root, sha)
    check_env(target)
    with lock.held(target.remote, target.paths, tag):
        current = release.current_version(target.remote, target.paths)
        record = (
            release.read_record(target.remote, target.paths, current)
            if current
            else None
        )
        if not record or not target.swarm.exists():
            raise LhdError(
                f"Nothing is deployed on {target.host}, so there is nothing to roll "
                f"back: deploy with `fab -H {target.host} deploy HEAD --subtractive`."
            )
        if current == tag:
            raise LhdError(f"{tag} is already the deployed version on {target.host}.")
        old = release.read_record(target.remote, target.paths, tag)
        if old and registry.pull_on(target.remote)(old["image"]):
            image = old["image"]
        else:
            image = prepare_release(target, root, sha, tag)
        run = Run(target, tag, image, options)
        run.rollback_image = record["image"]
        run.rollback_stamp = last_migration(target.remote, image)
        ui.done(f"{tag} expects the database at migration {run.rollback_stamp}")
        run.execute(rollback_plan(subtractive))
        finish(target, run, options)
    return tag
