"""Invoke tasks for development and testing: `inv --list` shows them."""

from __future__ import annotations

import signal

from invoke import Collection, Exit, task

from lhd import citasks
from lhd.errors import LhdError
from lhd.taskutil import context_objects, positive_seconds, reported

WAIT_HELP = "Seconds to wait for each service to become ready (default: 180)."


@task(
    help={
        "detach": "Return once the stack is up instead of following the app logs.",
        "build": "Rebuild the development image even when its inputs are unchanged.",
        "wait": WAIT_HELP,
    }
)
@reported
def up(c, detach=False, build=False, wait=180):
    """Start the development stack: build, migrate, seed, serve, follow logs.

    Rebuilds the Lucky development image only when shard.yml, shard.lock or
    its Dockerfile changed, prepares the development database, starts every
    service, waits for Hasura, starts the Hasura console with migration
    mode off, prints the URLs and follows the app logs (Ctrl-C stops
    following; the stack keeps running). Running it again is quick.

    Example: inv up --detach
    """
    from lhd import dev, images, ports, ui

    wait = positive_seconds(wait, "wait")
    runner, settings = context_objects(c)
    env = dev.prepare(settings, app=True)
    stack = dev.dev_stack(runner, settings)
    ports.check_free(env, stack.project, ports.DEV_PORTS)

    rebuilt = images.ensure_dev_image(
        runner, stack.compose, settings, dev.build_args(env), force=build
    )

    ui.step("Starting Postgres")
    stack.start(["postgres"])
    stack.wait_for_postgres(wait)

    ui.step("Preparing the development database")
    stack.lucky_tasks(dev.DEV_DB_TASKS)

    ui.step("Starting all services")
    if rebuilt:
        stack.recreate_app()
    stack.start()
    address = dev.url_host(dev.host_address(env))
    hasura = f"http://{address}:{env.get('HASURA_PORT') or dev.HASURA_PORT}"
    stack.wait_for_url("hasura", f"{hasura}/healthz", wait)

    ui.step("Starting the Hasura console")
    console = dev.start_console(stack, env, wait)

    app = f"http://{address}:{env.get('LUCKY_PORT') or dev.LUCKY_PORT}"
    ui.done("The development stack is up")
    ui.console().print(
        f"  app:            {app}\n"
        f"  hasura:         {hasura}\n"
        f"  hasura console: {console}"
    )
    if not detach:
        ui.step(
            "Following the lucky logs (Ctrl-C stops following; the stack keeps running)"
        )
        try:
            runner.run(
                stack.compose.logs(["lucky"], follow=True, tail="20"), check=False
            )
        except KeyboardInterrupt:
            pass


@task(
    help={"volumes": "Also remove the development database volume. Its data is lost."}
)
@reported
def down(c, volumes=False):
    """Stop and remove this project's containers and networks.

    Only this project's containers, networks and anonymous volumes are
    removed; the database volume stays unless --volumes is given. Other
    Compose projects are never touched.

    Example: inv down --volumes
    """
    from lhd import dev, ui

    runner, settings = context_objects(c)
    dev.prepare(settings)
    stack = dev.dev_stack(runner, settings)
    ui.step(
        f"Removing the {settings.project_name} stack"
        + (" and its volumes" if volumes else "")
    )
    stack.remove(volumes=volumes)
    ui.done("Removed" + ("" if volumes else "; the database volume was kept"))


@task(
    help={
        "shell": "Open a shell in the test app container instead of running specs.",
        "image": "Test this production image: a tag of the project's image, "
        "or a full image reference.",
        "wait": WAIT_HELP,
    }
)
@reported
def test(c, shell=False, image=None, wait=180):
    """Run `crystal spec` in a separate test stack, then remove it.

    The test stack is its own Compose project with its own database, so
    development data is never touched. Arguments after `--` go to
    `crystal spec`. The exit code is the spec run's; the test stack is
    removed on success, failure and Ctrl-C alike.

    Example: inv test -- spec/requests/version_spec.cr --order random
    """
    from lhd import dev, images, ports, ui

    wait = positive_seconds(wait, "wait")
    runner, settings = context_objects(c)
    env = dev.prepare(settings, app=True)
    reference = images.image_reference(settings, image) if image else None
    if reference and images.image_id(reference) is None:
        # Checked here so Compose never pulls it from a registry on its own.
        raise LhdError(
            f"Image {reference} not found on this machine. Build it with "
            "`inv build` (tagged with the commit SHA) or pull it with "
            f"`docker pull {reference}`."
        )
    dev.with_env(dev.image_env(reference))
    stack = dev.test_stack(runner, settings, reference)
    ports.check_free(env, stack.project, ports.TEST_PORTS)
    if reference is None:
        images.ensure_dev_image(
            runner,
            dev.dev_stack(runner, settings).compose,
            settings,
            dev.build_args(env),
        )

    try:
        with dev.test_run_lock(settings):
            exit_code = run_test_stack(runner, stack, env, shell, wait)
    except KeyboardInterrupt as interruption:
        number = getattr(interruption, "signal_number", signal.SIGINT)
        raise Exit(
            "Interrupted; the test stack was removed.", code=128 + number
        ) from None
    what = "The shell" if shell else "Specs"
    if exit_code != 0:
        raise Exit(f"{what} exited with code {exit_code}.", code=exit_code)
    ui.done("Shell closed" if shell else "Specs passed")


def run_test_stack(runner, stack, env, shell: bool, wait: float) -> int:
    """Start the test stack, run the specs or a shell in it, always remove it."""
    from lhd import dev, ui

    exit_code = 1
    try:
        ui.step(f"Starting the test stack {stack.project}")
        stack.start(["postgres"])
        stack.wait_for_postgres(wait)
        ui.step("Migrating the test database")
        stack.lucky_tasks(dev.TEST_DB_TASKS)
        stack.start(["hasura"])
        port = stack.compose_port("hasura", dev.HASURA_PORT, wait)
        stack.wait_for_url(
            "hasura",
            f"http://{dev.url_host(dev.host_address(env))}:{port}/healthz",
            wait,
        )

        if shell:
            ui.step(
                "Opening a shell in the test app container "
                "(exit it to remove the test stack)"
            )
            command = ["bash"]
        else:
            command = ["crystal", "spec", *dev.passthrough_args()]
            ui.step("Running " + " ".join(command))
        tty = dev.stdin_is_terminal()
        result = runner.run(
            stack.compose.run("lucky", command, tty=tty), check=False, interactive=True
        )
        exit_code = result.exited
    finally:
        with dev.interrupts_deferred():
            ui.step(f"Removing the test stack {stack.project}")
            stack.remove(volumes=True)
    return exit_code


@task(
    help={
        "tag": "Image tag (default: the 8-character SHA of HEAD, which needs "
        "a clean work tree).",
        "cache_from": "Image to use as a build cache, such as the branch-tagged image.",
    }
)
@reported
def build(c, tag=None, cache_from=None):
    """Build the production image, tagged with the commit SHA.

    Example: inv build --cache-from registry.example.org/me/app/lucky:main
    """
    from lhd import dev, images, ui

    runner, settings = context_objects(c)
    env = dev.prepare(settings, app=True)
    tag = tag or images.clean_commit_tag(settings.root)
    reference = f"{settings.registry_image}:{tag}"
    ui.step(f"Building {reference}")
    runner.run(
        images.build_production_argv(
            settings, tag, dev.production_build_args(env), cache_from
        ),
        what="Building the production image",
    )
    ui.done(f"Built {reference}")


@task(
    help={
        "service": "Service to show (default: all).",
        "follow": "Keep printing new lines.",
        "tail": "Number of lines to show from the end of each log (default: 100).",
    }
)
@reported
def logs(c, service=None, follow=False, tail="100"):
    """Show the logs of the development services.

    Example: inv logs --service hasura --follow
    """
    from lhd import dev

    if str(tail) != "all" and not str(tail).isdigit():
        raise LhdError(f"--tail {tail!r} is not a number of lines (or `all`).")
    runner, settings = context_objects(c)
    dev.prepare(settings)
    if service and service not in dev.SERVICES:
        raise LhdError(
            f"Unknown service {service!r}: use one of {', '.join(dev.SERVICES)}."
        )
    stack = dev.dev_stack(runner, settings)
    try:
        runner.run(
            stack.compose.logs(
                [service] if service else [], follow=follow, tail=str(tail)
            ),
            check=False,
        )
    except KeyboardInterrupt:
        pass


@task(help={"service": "Service to open the shell in (default: lucky)."})
@reported
def shell(c, service="lucky"):
    """Open a shell in a running development container.

    Example: inv shell --service postgres
    """
    from lhd import dev

    runner, settings = context_objects(c)
    dev.prepare(settings)
    if service not in dev.SERVICES:
        raise LhdError(
            f"Unknown service {service!r}: use one of {', '.join(dev.SERVICES)}."
        )
    stack = dev.dev_stack(runner, settings)
    dev.require_running(stack.project, service)
    tty = dev.stdin_is_terminal()
    command = ["sh", "-c", "command -v bash >/dev/null && exec bash || exec sh"]
    result = runner.run(
        stack.compose.exec(service, command, tty=tty), check=False, interactive=True
    )
    if result.exited != 0:
        raise Exit(code=result.exited)


@task
@reported
def run(c):
    """Run a one-off command in a new app container: inv run -- COMMAND...

    The container starts without the other services; to reach the database,
    start the stack first (`inv up --detach`) or use `inv lucky`.

    Example: inv run -- crystal --version
    """
    from lhd import dev

    command = dev.passthrough_args()
    if not command:
        raise LhdError(
            "No command given: put it after `--`, as in `inv run -- crystal --version`."
        )
    runner, settings = context_objects(c)
    dev.prepare(settings, app=True)
    stack = dev.dev_stack(runner, settings)
    tty = dev.stdin_is_terminal()
    result = runner.run(
        stack.compose.run("lucky", command, tty=tty), check=False, interactive=True
    )
    if result.exited != 0:
        raise Exit(code=result.exited)


@task(help={"name": "Lucky task to run, such as db.migrate or db.rollback_to."})
@reported
def lucky(c, name):
    """Run a Lucky task in the app container: inv lucky db.migrate [-- ARGS].

    Needs the development stack running (`inv up --detach`), since Lucky
    tasks talk to its database.

    Example: inv lucky db.rollback_to -- 20240101000000
    """
    from lhd import dev

    runner, settings = context_objects(c)
    dev.prepare(settings, app=True)
    stack = dev.dev_stack(runner, settings)
    dev.require_running(stack.project, "lucky")
    command = ["lucky", name, *dev.passthrough_args()]
    tty = dev.stdin_is_terminal()
    argv = stack.compose.exec("lucky", command, tty=tty)
    result = runner.run(argv, check=False, interactive=True)
    if result.exited != 0:
        raise Exit(code=result.exited)


@task
@reported
def psql(c):
    """Open psql on the development database: inv psql [-- PSQL ARGS].

    Example: inv psql -- -c 'select count(*) from users'
    """
    from lhd import dev

    runner, settings = context_objects(c)
    dev.prepare(settings)
    stack = dev.dev_stack(runner, settings)
    dev.require_running(stack.project, "postgres")
    database = f"{settings.project_name}_development"
    command = ["psql", "--username", "postgres", database, *dev.passthrough_args()]
    tty = dev.stdin_is_terminal()
    result = runner.run(
        stack.compose.exec("postgres", command, tty=tty), check=False, interactive=True
    )
    if result.exited != 0:
        raise Exit(code=result.exited)


@task
@reported
def status(c):
    """Show each development service: state, health and URL.

    Example: inv status
    """
    from lhd import dev
    from lhd import status as status_table

    runner, settings = context_objects(c)
    env = dev.prepare(settings)
    status_table.show(settings, env)


@task
@reported
def check(c):
    """Check the project setup: .env, Compose files, boilerplate leftovers.

    Useful after `copier update`, or after moving a project off the
    bash-and-sed LHD boilerplate. Needs Compose but no running engine.
    Exits 1 when a check fails.

    Example: inv check
    """
    from lhd import check as project_check
    from lhd import settings

    findings = project_check.run_checks(settings.load())
    project_check.show(findings)
    if not all(finding.ok for finding in findings):
        raise Exit(code=1)


namespace = Collection(
    up, down, test, build, logs, shell, run, lucky, psql, status, check, *citasks.TASKS
)
