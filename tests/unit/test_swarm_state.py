"""Convergence of one swarm service, judged from inspect and `service ps` output."""

from __future__ import annotations

from lhd import swarm

SINCE = "2030-01-01T00:00:00"
NEW = "registry.example.org/me/shop/lucky:bbbbbbbb"
OLD = "registry.example.org/me/shop/lucky:aaaaaaaa"


def service(image=NEW, state="completed", started="2030-01-01T00:00:05Z", replicas=1):
    result = {
        "Spec": {
            "Name": "shop_lucky",
            "Mode": {"Replicated": {"Replicas": replicas}},
            "TaskTemplate": {"ContainerSpec": {"Image": f"{image}@sha256:abc"}},
        }
    }
    if state:
        result["UpdateStatus"] = {"State": state, "StartedAt": started}
    return result


def task(image=NEW, current="Running 2 seconds ago", desired="Running", error=""):
    return {
        "Image": image,
        "CurrentState": current,
        "DesiredState": desired,
        "Error": error,
    }


def test_converged_with_running_task():
    state = swarm.service_state(service(), [task()], SINCE, NEW)
    assert state.converged
    assert not state.failed


def test_starting_task_is_pending():
    state = swarm.service_state(
        service(), [task(current="Starting 1 second ago")], SINCE, NEW
    )
    assert not state.converged
    assert not state.failed
    assert "0/1" in state.reason


def test_updating_is_pending():
    state = swarm.service_state(service(state="updating"), [task()], SINCE, NEW)
    assert not state.converged
    assert "updating" in state.reason


def test_rolled_back_image_fails_with_task_errors():
    tasks = [
        task(image=OLD),
        task(
            desired="Shutdown",
            current="Failed 5 seconds ago",
            error="task: non-zero exit (1): dockerexec: unhealthy container",
        ),
    ]
    state = swarm.service_state(
        service(image=OLD, state="rollback_completed"), tasks, SINCE, NEW
    )
    assert state.failed
    assert "shop_lucky" in state.reason
    assert "rolled the update back" in state.reason
    assert "unhealthy container" in state.reason


def test_rollback_in_progress_is_pending():
    state = swarm.service_state(
        service(image=OLD, state="rollback_started"), [task(image=OLD)], SINCE, NEW
    )
    assert not state.failed
    assert not state.converged


def test_old_rollback_status_is_ignored():
    old = service(image=NEW, state="rollback_completed", started="2029-12-31T23:00:00Z")
    state = swarm.service_state(old, [task()], SINCE, NEW)
    assert state.converged


def test_recent_rollback_of_other_service_fails():
    recent = service(state="rollback_completed")
    state = swarm.service_state(recent, [task()], SINCE, None)
    assert state.failed


def test_paused_update_fails():
    paused = service(state="paused")
    paused["UpdateStatus"]["Message"] = "update paused due to failure"
    state = swarm.service_state(paused, [task()], SINCE, NEW)
    assert state.failed
    assert "update paused due to failure" in state.reason


def test_fewer_running_than_replicas_is_pending():
    state = swarm.service_state(
        service(replicas=2, state=""),
        [task(), task(current="Starting now")],
        SINCE,
        None,
    )
    assert not state.converged
    assert "1/2" in state.reason


def test_global_service_needs_every_task_running():
    global_service = service(state="")
    global_service["Spec"]["Mode"] = {"Global": {}}
    assert swarm.service_state(global_service, [task(), task()], SINCE, None).converged


def test_task_errors_are_distinct_and_limited():
    tasks = [
        task(error="e1"),
        task(error="e1"),
        task(error="e2"),
        task(error="e3"),
        task(error="e4"),
    ]
    assert swarm.task_errors(tasks) == ["e1", "e2", "e3"]
