"""Order of the deploy and rollback steps, read from the argument lists a
fake server records."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fakeremote import FakeRemote
from lhd import deploy, prodenv
from lhd.errors import LhdError
from lhd.server import ServerPaths
from lhd.settings import Settings

IMAGE = "registry.example.org/me/shop/lucky"


def git(root: Path, *args: str) -> str:
    identity = ["-c", "user.name=LHD tests", "-c", "user.email=tests@lhd.invalid"]
    return subprocess.run(
        ["git", *identity, *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "shop"
    (root / "Docker").mkdir(parents=True)
    (root / "Docker" / "compose.yml").write_text("services: {}\n")
    git(root, "init", "--quiet", "--initial-branch", "main")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "First")
    (root / "Docker" / "compose.prod.yml").write_text("services: {}\n")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "Second")
    return root


def target_for(remote: FakeRemote, root: Path) -> deploy.Target:
    settings = Settings(root, "shop", IMAGE, "shop", "shop.example.org")
    paths = ServerPaths(home="/home/deploy", stack="shop")
    values = prodenv.complete(
        {},
        {
            "APP_DOMAIN": "shop.example.org",
            "SEND_GRID_KEY": "SG.unit-test-key",
            "TLS": "false",
        },
        settings,
        paths,
    )
    remote.files[paths.env_file] = prodenv.merged(None, values)
    return deploy.Target(remote, settings, paths)


def step_of(argv: list[str]) -> str | None:
    words = " ".join(argv)
    if "lhd-backup" in argv:
        return "backup"
    if "db.migrate" in argv:
        return "migrate"
    if "db.rollback_to" in argv:
        return "rollback_database"
    if argv[-1:] == ["db.seed.required_data"]:
        return "seed"
    if "stack deploy" in words:
        return "stack"
    if argv[:3] == ["docker", "service", "inspect"]:
        return "wait"
    if argv[:1] == ["mkdir"] and argv[-1].endswith("deploy.lock"):
        return "lock"
    if argv[:2] == ["rm", "-rf"] and argv[-1].endswith("deploy.lock"):
        return "unlock"
    if argv[:2] == ["ln", "-sfn"]:
        return "current"
    return None


def steps(remote: FakeRemote) -> list[str]:
    order: list[str] = []
    for argv in remote.calls:
        name = step_of(argv)
        if name and (not order or order[-1] != name):
            order.append(name)
    return order


def test_plans():
    assert deploy.deploy_plan(False, True) == ("backup", "migrate", "stack", "wait")
    assert deploy.deploy_plan(True, True) == ("backup", "stack", "wait", "migrate")
    assert deploy.deploy_plan(True, False) == (
        "stack",
        "wait_database",
        "migrate",
        "wait",
    )
    assert deploy.rollback_plan(False) == (
        "backup",
        "stack",
        "wait",
        "rollback_database",
        "seed",
    )
    assert deploy.rollback_plan(True) == (
        "backup",
        "rollback_database",
        "seed",
        "stack",
        "wait",
    )


def test_additive_deploy_migrates_before_stack(project):
    remote = FakeRemote("shop")
    deploy.deploy(
        target_for(remote, project), project, "HEAD", False, deploy.Options(timeout=5)
    )
    assert steps(remote) == [
        "lock",
        "backup",
        "migrate",
        "stack",
        "wait",
        "current",
        "unlock",
    ]


def test_subtractive_deploy_migrates_after_stack(project):
    remote = FakeRemote("shop")
    deploy.deploy(
        target_for(remote, project), project, "HEAD", True, deploy.Options(timeout=5)
    )
    assert steps(remote) == [
        "lock",
        "backup",
        "stack",
        "wait",
        "migrate",
        "current",
        "unlock",
    ]


def test_first_deploy_waits_for_database_then_migrates(project):
    remote = FakeRemote("shop", stack_exists=False)
    deploy.deploy(
        target_for(remote, project), project, "HEAD", True, deploy.Options(timeout=5)
    )
    assert steps(remote) == [
        "lock",
        "stack",
        "wait",
        "migrate",
        "wait",
        "current",
        "unlock",
    ]


def test_first_deploy_needs_subtractive(project):
    remote = FakeRemote("shop", stack_exists=False)
    with pytest.raises(LhdError, match="--subtractive"):
        deploy.deploy(
            target_for(remote, project), project, "HEAD", False, deploy.Options()
        )
    assert steps(remote) == ["lock", "unlock"]


def test_deploy_uses_image_of_version(project):
    remote = FakeRemote("shop")
    tag = deploy.deploy(
        target_for(remote, project), project, "HEAD", False, deploy.Options(timeout=5)
    )
    assert remote.image == f"{IMAGE}:{tag}"
    pulls = [argv for argv in remote.calls if argv[:2] == ["docker", "pull"]]
    assert pulls == [["docker", "pull", "--quiet", f"{IMAGE}:{tag}"]]


def test_failed_migration_names_backup_and_unlocks(project):
    remote = FakeRemote("shop", failing={"db.migrate"})
    with pytest.raises(LhdError) as raised:
        deploy.deploy(
            target_for(remote, project),
            project,
            "HEAD",
            False,
            deploy.Options(timeout=5),
        )
    message = str(raised.value)
    assert "previous release keeps serving" in message
    assert "/home/deploy/shop/backups/" in message
    assert "stack" not in steps(remote)
    assert steps(remote)[-1] == "unlock"


def test_unknown_version_is_rejected(project):
    remote = FakeRemote("shop")
    with pytest.raises(LhdError, match="'nope' is not a commit"):
        deploy.deploy(
            target_for(remote, project), project, "nope", False, deploy.Options()
        )
    assert remote.calls == []


def deployed(remote: FakeRemote, project: Path) -> deploy.Target:
    target = target_for(remote, project)
    deploy.deploy(target, project, "HEAD", True, deploy.Options(timeout=5))
    remote.calls.clear()
    return target


def test_additive_rollback_code_first(project):
    remote = FakeRemote("shop")
    target = deployed(remote, project)
    deploy.rollback(target, project, "HEAD~1", False, deploy.Options(timeout=5))
    assert steps(remote) == [
        "lock", "backup", "stack", "wait", "rollback_database", "seed", "current", "unlock",
    ]  # fmt: skip


def test_subtractive_rollback_database_first(project):
    remote = FakeRemote("shop")
    target = deployed(remote, project)
    deploy.rollback(target, project, "HEAD~1", True, deploy.Options(timeout=5))
    assert steps(remote) == [
        "lock", "backup", "rollback_database", "seed", "stack", "wait", "current", "unlock",
    ]  # fmt: skip


def test_rollback_runs_old_migration_stamp_in_current_image(project):
    remote = FakeRemote("shop")
    target = deployed(remote, project)
    current_image = remote.image
    deploy.rollback(target, project, "HEAD~1", False, deploy.Options(timeout=5))
    (argv,) = [argv for argv in remote.calls if "db.rollback_to" in argv]
    assert argv[-3:] == ["lucky", "db.rollback_to", "20240101000000"]
    assert current_image in argv
    assert remote.image != current_image


def test_no_secret_in_recorded_argv(project):
    remote = FakeRemote("shop")
    target = deployed(remote, project)
    deploy.rollback(target, project, "HEAD~1", False, deploy.Options(timeout=5))
    values = prodenv.parse(remote.files[target.paths.env_file])
    joined = "\n".join(" ".join(argv) for argv in remote.calls)
    leaked = [key for key in prodenv.SECRET_KEYS if values[key] in joined]
    assert leaked == []
