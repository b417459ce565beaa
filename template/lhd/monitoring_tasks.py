"""Fabric task `swarmprom`: deploy the monitoring stack to the server."""

from __future__ import annotations

from fabric import task

from lhd.errors import LhdError
from lhd.taskutil import reported_on_server as reported


@task(
    positional=["version"],
    help={
        "version": "Commit whose Docker/monitoring files to deploy: a SHA, tag "
        "or branch (default: HEAD).",
        "timeout": "Seconds to wait for every monitoring service to run all "
        "its tasks (default: 300).",
        "resolve_image": "When `docker stack deploy` asks registries for image "
        "digests: always (default), changed or never (for images that exist "
        "only on the server).",
    },
)
@reported
def swarmprom(c, version="HEAD", timeout=300, resolve_image="always"):
    """Deploy the monitoring stack: Prometheus, Alertmanager, Grafana, exporters.

    Uploads Docker/monitoring of the commit into its release folder on the
    server, runs `docker stack deploy` of <stack>_monitoring with the
    variables of .env.production (ADMIN_USER and ADMIN_PASSWORD for Grafana,
    PROMETHEUS_RETENTION, and SLACK_URL, SLACK_CHANNEL and SLACK_USER for
    alerts), waits until every service runs all its tasks, and removes the
    swarm configs of earlier versions. Needs a bootstrapped server with the
    app stack deployed, whose network <stack>_public the stack joins.

    Example: fab -H deploy@example.org swarmprom
    """
    from lhd import monitoring, server, settings
    from lhd.fabtasks import remote_of

    remote = remote_of(c)
    project = settings.load()
    monitoring.warn_local_changes(project.root)
    release = monitoring.read_release(project.root, version)
    paths = server.locate(remote, project.stack_name)
    if resolve_image not in ("always", "changed", "never"):
        raise LhdError(
            f"Invalid --resolve-image {resolve_image!r}: use always, changed or never."
        )
    monitoring.deploy(
        remote, paths, release, wait=float(timeout), resolve_image=resolve_image
    )
