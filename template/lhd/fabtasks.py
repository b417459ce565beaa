"""Fabric tasks for production: `fab --list` shows them, `fab -H HOST TASK` runs one.

Every task but htpasswd runs on the server given with -H (an SSH host
such as deploy@example.org), in the project whose lhd.toml is in this
folder or above it.
"""

from __future__ import annotations

from fabric import task
from invoke import Collection

from lhd.errors import LhdError
from lhd.monitoring_tasks import swarmprom
from lhd.taskutil import reported_on_server as reported

TIMEOUT_HELP = "Seconds to wait for the services to converge (default: 600)."
RESOLVE_HELP = (
    "When `docker stack deploy` asks registries for image digests: always "
    "(default), changed or never (for images that exist only on the server)."
)
RESOLVE_CHOICES = ("always", "changed", "never")
STACK_SERVICES = ("postgres", "hasura", "lucky", "traefik", "socket-proxy")


def remote_of(c):
    """Return a runner on the server of connection `c`; raise LhdError without -H."""
    from fabric import Connection

    from lhd.remote import RemoteRunner, open_verified

    if not isinstance(c, Connection):
        raise LhdError(
            "This task runs on a server: name it with -H, as in "
            "`fab -H deploy@example.org status`."
        )
    open_verified(c)
    return RemoteRunner(c)


def target_of(c, resolve_image: str = "always"):
    """Return the deploy target of connection `c`, or raise LhdError without -H."""
    from lhd import server, settings
    from lhd.deploy import Target

    remote = remote_of(c)
    project = settings.load()
    if resolve_image not in RESOLVE_CHOICES:
        raise LhdError(
            f"Invalid --resolve-image {resolve_image!r}: use one of "
            f"{', '.join(RESOLVE_CHOICES)}."
        )
    paths = server.locate(remote, project.stack_name)
    return Target(remote, project, paths, resolve_image)


@task(
    help={
        "domain": "Domain the app is served on (default: app_domain of lhd.toml).",
        "tls": "Serve HTTPS with the pair in <stack>/certs (cert.pem, key.pem).",
        "no_tls": "Serve plain HTTP (behind a TLS proxy, or for a test).",
        "registry_user": "User to log in to the registry with; the password "
        "comes from LHD_REGISTRY_PASSWORD or a prompt.",
        "skip_login": "Do not log in to the registry (public images, or the "
        "server is logged in already).",
        "advertise_address": "Address for `docker swarm init` (default: the "
        "server's address of this SSH connection).",
    }
)
@reported
def bootstrap(
    c,
    domain=None,
    tls=False,
    no_tls=False,
    registry_user=None,
    skip_login=False,
    advertise_address=None,
):
    """Prepare the server: folders, .env.production, registry login, swarm.

    Safe to run again: generated secrets are kept, so a second run changes
    nothing. Values a person supplies are prompted for on a terminal. Without
    one, give them as options, the SendGrid key in LHD_SEND_GRID_KEY and the
    registry password in LHD_REGISTRY_PASSWORD. Secrets are never printed.

    Example: fab -H deploy@example.org bootstrap --no-tls --registry-user me
    """
    from lhd import bootstrap as steps
    from lhd import settings, ui

    if tls and no_tls:
        raise LhdError("Give --tls or --no-tls, not both.")
    remote = remote_of(c)
    tls_choice = None
    if tls:
        tls_choice = True
    elif no_tls:
        tls_choice = False
    inputs = steps.Inputs(
        domain=domain,
        tls=tls_choice,
        registry_user=registry_user,
        skip_login=skip_login,
        advertise_address=advertise_address,
    )
    steps.bootstrap(remote, settings.load(), inputs)
    ui.done(
        f"{c.host} is ready for `fab -H {c.original_host} deploy HEAD --subtractive`"
    )


@task(
    positional=["version"],
    help={
        # Invoke has no optional positional arguments, so VERSION is required.
        "version": "Commit to deploy: a SHA, tag or branch, such as HEAD.",
        "subtractive": "Replace the code before migrating (needed on the first "
        "deploy and when a migration removes what the old code uses).",
        "timeout": TIMEOUT_HELP,
        "resolve_image": RESOLVE_HELP,
        "keep_releases": "Release folders to keep besides the deployed one "
        "(default: 5).",
        "keep_backups": "Database backups to keep (default: 10).",
    },
)
@reported
def deploy(
    c,
    version,
    subtractive=False,
    timeout=600,
    resolve_image="always",
    keep_releases=5,
    keep_backups=10,
):
    """Deploy a commit: upload, back up, migrate and roll the stack out.

    Takes the deploy lock, uploads the commit's Docker/ and db/hasura/ and
    picks its image (or the newest image of its 9 previous commits). Backs
    up the database, then migrates before (additive, the default) or after
    (--subtractive) replacing the code. Waits until every service is healthy
    on the new version, prunes old releases, images and backups, and frees
    the lock. Exits non-zero when swarm rolled the update back.

    Example: fab -H deploy@example.org deploy HEAD
    """
    from lhd import deploy as steps
    from lhd import ui

    target = target_of(c, resolve_image)
    options = steps.Options(
        timeout=float(timeout),
        keep_releases=int(keep_releases),
        keep_backups=int(keep_backups),
    )
    tag = steps.deploy(target, target.settings.root, version, subtractive, options)
    ui.done(f"Deployed {tag} to {target.host}")


@task(
    positional=["version"],
    help={
        "version": "Commit to roll back to (a SHA, tag or branch).",
        "subtractive": "Roll the database back before the code (when the "
        "deploy being undone removed what the older code needs).",
        "timeout": TIMEOUT_HELP,
        "resolve_image": RESOLVE_HELP,
    },
)
@reported
def rollback(c, version, subtractive=False, timeout=600, resolve_image="always"):
    """Roll code and database back to an earlier commit.

    Reads the newest migration of that commit's image (bin/last_migration),
    runs `lucky db.rollback_to` in a container of the current image, seeds
    the old required data and redeploys the old release: code first by
    default, database first with --subtractive. The database is backed up
    first.

    Example: fab -H deploy@example.org rollback 3f2a9c1e
    """
    from lhd import deploy as steps
    from lhd import ui

    target = target_of(c, resolve_image)
    tag = steps.rollback(
        target,
        target.settings.root,
        version,
        subtractive,
        steps.Options(timeout=float(timeout)),
    )
    ui.done(f"Rolled {target.host} back to {tag}")


@task(help={"yes": "Remove the lock without asking (needed without a terminal)."})
@reported
def unlock(c, yes=False):
    """Remove the deploy lock that an interrupted or crashed deploy left.

    Shows who holds the lock and since when, and asks first: removing the
    lock of a deploy that still runs lets a second deploy start beside it.

    Example: fab -H deploy@example.org unlock --yes
    """
    from lhd import lock, ui
    from lhd.runner import stdin_is_terminal

    target = target_of(c)
    owner = lock.read_owner(target.remote, target.paths)
    if not target.remote.exists(target.paths.lock_dir):
        ui.done(f"No deploy lock on {target.host}")
        return
    ui.warn(
        lock.refusal_message(owner, target.paths, target.host).split(". Wait")[0] + "."
    )
    if not yes:
        if not stdin_is_terminal():
            raise LhdError("Unlock not confirmed: give --yes (there is no terminal).")
        from rich.prompt import Confirm

        if not Confirm.ask("Is that deploy no longer running? Remove the lock?"):
            raise LhdError("Unlock cancelled; the lock stays.")
    lock.release(target.remote, target.paths)
    holder = f" held by {owner.get('user')}@{owner.get('host')}" if owner else ""
    ui.done(f"Removed the deploy lock{holder} on {target.host}")


@task
@reported
def status(c):
    """Show the stack's services, replicas, images and deployed version.

    Example: fab -H deploy@example.org status
    """
    from lhd import prodstatus

    prodstatus.show(target_of(c))


@task(
    positional=["service"],
    help={
        "service": "Service: postgres, hasura, lucky, traefik or socket-proxy.",
        "follow": "Keep printing new lines.",
        "tail": "Number of lines to show from the end of the log (default: 100).",
    },
)
@reported
def logs(c, service, follow=False, tail="100"):
    """Show the logs of one service of the stack.

    Example: fab -H deploy@example.org logs lucky --follow --tail 20
    """
    from lhd import swarm

    if service not in STACK_SERVICES:
        raise LhdError(
            f"Unknown service {service!r}: use one of {', '.join(STACK_SERVICES)}."
        )
    target = target_of(c)
    name = swarm.service_name(target.settings.stack_name, service)
    try:
        target.remote.run(swarm.logs_argv(name, follow, str(tail)), check=False)
    except KeyboardInterrupt:
        pass


@task
@reported
def backup(c):
    """Back up the production database now (pg_dump -Fc into <stack>/backups).

    Example: fab -H deploy@example.org backup
    """
    from lhd import backup as backups
    from lhd import release, ui

    target = target_of(c)
    version = release.current_version(target.remote, target.paths) or "manual"
    container = target.swarm.running_container("postgres")
    path = backups.create(target.remote, target.paths, container, version)
    ui.done(f"Backup: {path}")


@task(
    positional=["name"],
    help={
        "name": "Backup file name in <stack>/backups, or an absolute path.",
        "yes": "Restore without asking (needed without a terminal).",
    },
)
@reported
def restore(c, name, yes=False):
    """Replace the production database with a backup.

    Every change since the backup is lost. The lucky and hasura services
    are scaled to 0 during the restore and back up after it.

    Example: fab -H deploy@example.org restore 20250101T120000Z-3f2a9c1e.dump --yes
    """
    from lhd import backup as backups
    from lhd import maintenance, ui
    from lhd.runner import stdin_is_terminal

    target = target_of(c)
    path = backups.resolve(target.paths, name)
    if not target.remote.exists(path):
        raise LhdError(
            f"Backup {path} not found on {target.host}; nothing was changed. "
            f"List the backups with `ssh` in {target.paths.backups_dir}."
        )
    ui.warn(
        f"This replaces the database of {target.settings.stack_name} on "
        f"{target.host} with {name}; every change since that backup is lost, "
        "and the app is down while it runs."
    )
    if not yes:
        if not stdin_is_terminal():
            raise LhdError("Restore not confirmed: give --yes (there is no terminal).")
        from rich.prompt import Confirm

        if not Confirm.ask("Restore?"):
            raise LhdError("Restore cancelled; nothing was changed.")
    path = maintenance.restore(target, name)
    ui.done(f"Restored {path}")


@task(
    positional=["user"],
    help={
        "user": "User name of the basic-auth entry.",
        "scheme": "Hash scheme: bcrypt (default) or apr1.",
    },
)
@reported
def htpasswd(c, user, scheme="bcrypt"):
    """Print a basic-auth entry for Traefik, in file form and label form.

    Asks for the password without echo, or reads one line from standard
    input when it is not a terminal. Runs locally: no -H needed.

    Example: printf '%s\\n' "$PASSWORD" | fab htpasswd admin --scheme apr1
    """
    import getpass
    import sys

    from lhd import htpasswd as hashing
    from lhd import ui
    from lhd.runner import stdin_is_terminal

    if stdin_is_terminal():
        password = getpass.getpass(f"Password for {user}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    line = hashing.entry(user, password, scheme)
    ui.console().print(f"htpasswd file:  {line}", soft_wrap=True)
    ui.console().print(
        f"compose label:  {hashing.for_compose_label(line)}", soft_wrap=True
    )


namespace = Collection(
    bootstrap, deploy, rollback, unlock, status, logs, backup, restore, htpasswd
)
# The monitoring stack's task lives in its own module.
namespace.add_task(swarmprom)
