"""Restore a backup with the app stopped, and start it again afterwards."""

from __future__ import annotations

from lhd import backup, lock, ui
from lhd.deploy import Target
from lhd.swarm import APP_SERVICES


def restore(target: Target, name: str) -> str:
    """Restore backup `name` into the database; return its path.

    The lucky and hasura services are scaled to 0 while pg_restore runs, so
    nothing writes to the database, and back to their replica counts after,
    also when the restore fails.
    """
    path = backup.resolve(target.paths, name)
    swarm = target.swarm
    with lock.held(target.remote, target.paths, f"restore {name}"):
        replicas = swarm.replicas(APP_SERVICES)
        ui.step(f"Stopping {', '.join(replicas)}")
        swarm.scale({service: 0 for service in replicas})
        try:
            ui.step(f"Restoring {path}")
            backup.restore(target.remote, swarm.running_container("postgres"), path)
        finally:
            ui.step(f"Starting {', '.join(replicas)} again")
            swarm.scale(replicas)
    return path
