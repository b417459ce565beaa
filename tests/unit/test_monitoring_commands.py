import io
import json
import tarfile
from dataclasses import dataclass

import pytest

from lhd import monitoring, readiness
from lhd.errors import LhdError
from lhd.remote import ENV_FILE_SCRIPT
from lhd.server import ServerPaths

PATHS = ServerPaths(home="/home/deploy", stack="shop")


def archive(files: dict[str, bytes], mtime: int = 0) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = mtime
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@dataclass
class Result:
    stdout: str = ""
    exited: int = 0

    @property
    def ok(self) -> bool:
        return self.exited == 0


class Recorder:
    """Records argv and answers `docker service ls` and `inspect` from tables."""

    def __init__(self, listing: list[dict] = (), inspection: list[dict] = ()):
        self.listing = list(listing)
        self.inspection = list(inspection)
        self.calls: list[list[str]] = []
        self.files: dict[str, bytes] = {}

    def run(self, argv, *, check=True, hide=False, what=None, **_):
        self.calls.append(list(argv))
        if argv[:3] == ["docker", "service", "ls"]:
            return Result("".join(json.dumps(row) + "\n" for row in self.listing))
        if argv[:3] == ["docker", "service", "inspect"]:
            return Result(json.dumps(self.inspection))
        return Result()

    def output(self, argv, what=None):
        return self.run(argv).stdout

    def put(self, content, path, private=False):
        self.calls.append(["put", path])
        self.files[path] = content


def test_deploy_command_loads_env_file():
    argv = monitoring.deploy_command(
        "/home/deploy/shop/.env.production",
        "/home/deploy/shop/releases/abcd1234/Docker/monitoring/compose.yml",
        "shop_monitoring",
        "0123456789ab",
    )
    assert argv[:5] == [
        "sh", "-c", ENV_FILE_SCRIPT, "lhd-env", "/home/deploy/shop/.env.production",
    ]  # fmt: skip
    assert argv[5:7] == ["env", "MONITORING_CONFIG_VERSION=0123456789ab"]
    assert argv[7:10] == ["docker", "stack", "deploy"]
    assert argv[-1] == "shop_monitoring"
    assert "--prune" in argv
    assert argv[argv.index("--resolve-image") + 1] == "always"


def test_deploy_command_rejects_unknown_resolve_mode():
    with pytest.raises(LhdError, match="--resolve-image"):
        monitoring.deploy_command("/e", "/c.yml", "shop_monitoring", "v", "sometimes")


def test_config_version_ignores_commit_time():
    files = {"Docker/monitoring/compose.yml": b"services: {}\n"}
    assert monitoring.config_version(archive(files, 1)) == monitoring.config_version(
        archive(files, 2)
    )


def test_config_version_follows_content():
    before = archive({"Docker/monitoring/compose.yml": b"a"})
    after = archive({"Docker/monitoring/compose.yml": b"b"})
    assert monitoring.config_version(before) != monitoring.config_version(after)
    assert len(monitoring.config_version(before)) == 12


def test_upload_replaces_monitoring_folder():
    runner = Recorder()
    release = monitoring.Release("abcd1234", archive({"Docker/monitoring/x": b"1"}))
    compose_file = monitoring.upload(runner, PATHS, release)
    release_dir = "/home/deploy/shop/releases/abcd1234"
    assert compose_file == f"{release_dir}/Docker/monitoring/compose.yml"
    assert runner.calls == [
        ["mkdir", "-p", release_dir],
        ["rm", "-rf", f"{release_dir}/Docker/monitoring"],
        ["put", f"{release_dir}/.monitoring.tar"],
        ["tar", "-x", "-f", f"{release_dir}/.monitoring.tar", "-C", release_dir],
        ["rm", "-f", f"{release_dir}/.monitoring.tar"],
    ]


def service(name, replicas, mode="replicated"):
    return {"Name": name, "Mode": mode, "Replicas": replicas}


def inspected(name, state=None):
    return {
        "Spec": {"Name": name},
        **({"UpdateStatus": {"State": state}} if state else {}),
    }


def test_parse_services_reads_replicas():
    listing = json.dumps(service("m_prometheus", "1/1")) + "\n"
    (state,) = monitoring.parse_services(
        listing, json.dumps([inspected("m_prometheus")])
    )
    assert (state.running, state.desired, state.converged) == (1, 1, True)


@pytest.mark.parametrize(
    "row, update_state",
    [
        (service("m_prometheus", "0/1"), None),
        (service("m_node-exporter", "0/0", mode="global"), None),
        (service("m_prometheus", "1/1"), "updating"),
    ],
)
def test_check_waits_for_unconverged(row, update_state):
    runner = Recorder([row], [inspected(row["Name"], update_state)])
    with pytest.raises(readiness.NotReady):
        monitoring.convergence_check(runner, "m")()


def test_check_fails_on_rollback():
    row = service("m_grafana", "1/1")
    runner = Recorder([row], [inspected("m_grafana", "rollback_completed")])
    with pytest.raises(readiness.Failed, match="rollback_completed"):
        monitoring.convergence_check(runner, "m")()


def test_check_limited_to_named_services():
    rows = [service("m_prometheus", "1/1"), service("m_grafana", "0/1")]
    runner = Recorder(rows, [inspected("m_prometheus"), inspected("m_grafana")])
    monitoring.convergence_check(runner, "m", ["prometheus"])()
    with pytest.raises(readiness.NotReady):
        monitoring.convergence_check(runner, "m")()


def test_check_reports_missing_service():
    runner = Recorder([service("m_prometheus", "1/1")], [inspected("m_prometheus")])
    with pytest.raises(readiness.NotReady, match="m_cadvisor"):
        monitoring.convergence_check(runner, "m", ["prometheus", "cadvisor"])()
