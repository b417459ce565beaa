"""The monitoring stack on a real swarm: `lhd.monitoring.deploy` uploads the
files of a generated project into a server folder on this machine and
deploys `<stack>_monitoring` with Debian builds of Prometheus, Alertmanager,
node-exporter and cAdvisor. Prometheus is queried through its HTTP API on
the loopback address of its own container.

Grafana's image cannot be had here, so its service points at an image id
that does not exist: the engine does not try to pull an image given by id,
and the test waits only for the other services. Every image is given by id
for the same reason, so no registry is contacted.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

from conftest import copy_fixture_app, generate, git

STACK = "lhdtest_mon"
MONITORING = f"{STACK}_monitoring"
PUBLIC_NETWORK = f"{STACK}_public"
MISSING_IMAGE = "sha256:" + "0" * 64
RUNNING_SERVICES = ("prometheus", "alertmanager", "node-exporter", "cadvisor")
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$stack": ".*"}


class LocalServer:
    """The runner interface of lhd.remote.RemoteRunner, on this machine."""

    host = "localhost"

    def __init__(self) -> None:
        from invoke import Context

        from lhd.runner import Runner

        self.runner = Runner(Context())

    def run(self, argv, **options):
        options.pop("stdin", None)
        return self.runner.run(argv, **options)

    def output(self, argv, what=None) -> str:
        return self.runner.output(argv, what=what)

    def put(self, content: bytes, path: str, private: bool = False) -> None:
        Path(path).write_bytes(content)
        Path(path).chmod(0o600 if private else 0o644)


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=check, timeout=120
    )


def ensure_swarm(client) -> None:
    if client.info()["Swarm"]["LocalNodeState"] == "active":
        return
    result = docker("swarm", "init", "--advertise-addr", "127.0.0.1", check=False)
    # Another test process may have initialised it in the meantime.
    assert result.returncode == 0 or "already part of a swarm" in result.stderr, (
        result.stderr
    )


def remove_stack(client) -> None:
    """Remove the monitoring stack and its volumes; wait until swarm is done."""
    docker("stack", "rm", MONITORING, check=False)
    label = f"com.docker.stack.namespace={MONITORING}"
    deadline = time.monotonic() + 120
    while True:
        services = docker(
            "service", "ls", "--quiet", "--filter", f"label={label}"
        ).stdout.split()
        containers = client.containers.list(all=True, filters={"label": label})
        networks = client.networks.list(filters={"label": label})
        if not services and not containers and not networks:
            break
        assert time.monotonic() < deadline, (
            f"{MONITORING} still has {len(services)} services, "
            f"{len(containers)} containers and {len(networks)} networks after 120 s"
        )
        time.sleep(0.5)
    for volume in client.volumes.list(filters={"label": label}):
        volume.remove(force=True)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, docker_engine, test_images):
    from lhd import envfile, htpasswd, monitoring, readiness
    from lhd.server import ServerPaths

    ensure_swarm(docker_engine)
    remove_stack(docker_engine)
    root = copy_fixture_app(tmp_path_factory.mktemp("monitoring") / "fixture_app")
    generate(root, stack_name=STACK, app_domain="lhdtest.localhost")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "Add LHD")

    home = tmp_path_factory.mktemp("server_home")
    paths = ServerPaths(home=str(home), stack=STACK)
    Path(paths.root).mkdir()
    image_ids = {
        name: docker_engine.images.get(test_images[role]).id
        for name, role in (
            ("PROMETHEUS_IMAGE", "prometheus"),
            ("ALERTMANAGER_IMAGE", "alertmanager"),
            ("NODE_EXPORTER_IMAGE", "node-exporter"),
            ("CADVISOR_IMAGE", "cadvisor"),
        )
    }
    envfile.update(
        Path(paths.env_file),
        {
            "ADMIN_USER": "admin",
            "ADMIN_PASSWORD": "s3cret $pass word",
            "ADMIN_PASSWORD_HASH": htpasswd.hash_password("s3cret"),
            "APP_DOMAIN": "lhdtest.localhost",
            "TLS": "false",
            "PROMETHEUS_RETENTION": "2h",
            "GRAFANA_IMAGE": MISSING_IMAGE,
            **image_ids,
        },
    )

    created_network = False
    if not docker_engine.networks.list(names=[PUBLIC_NETWORK]):
        docker_engine.networks.create(PUBLIC_NETWORK, driver="overlay", attachable=True)
        created_network = True

    server = LocalServer()
    release = monitoring.read_release(root)
    started = time.monotonic()
    try:
        monitoring.deploy(server, paths, release, wait=0, resolve_image="never")
        readiness.wait_for(
            monitoring.convergence_check(server, MONITORING, RUNNING_SERVICES),
            f"the services of {MONITORING} but grafana",
            timeout=240,
            diagnostics=monitoring.stack_diagnostics(server, MONITORING),
        )
        print(f"monitoring stack converged in {time.monotonic() - started:.1f} s")
        yield server, paths, release, root
    finally:
        remove_stack(docker_engine)
        if created_network:
            for network in docker_engine.networks.list(names=[PUBLIC_NETWORK]):
                network.remove()


def task_container(client, service: str):
    (container,) = client.containers.list(
        filters={"label": f"com.docker.swarm.service.name={MONITORING}_{service}"}
    )
    return container


def http_get(client, service: str, port: int, path: str) -> dict:
    """GET `path` on the loopback address inside the service's task container."""
    container = task_container(client, service)
    result = container.exec_run(
        ["wget", "-q", "-O", "-", f"http://127.0.0.1:{port}{path}"]
    )
    assert result.exit_code == 0, result.output.decode(errors="replace")
    return json.loads(result.output)


def prometheus_query(client, query: str) -> dict:
    path = "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    return http_get(client, "prometheus", 9090, path)


def wait_for_result(client, query: str, timeout: float = 90) -> list:
    deadline = time.monotonic() + timeout
    answer: dict = {}
    while time.monotonic() < deadline:
        answer = prometheus_query(client, query)
        if answer["status"] == "success" and answer["data"]["result"]:
            return answer["data"]["result"]
        time.sleep(1)
    targets = http_get(client, "prometheus", 9090, "/api/v1/targets")
    summary = [
        (target["scrapeUrl"], target["health"], target["lastError"])
        for target in targets["data"]["activeTargets"]
    ]
    pytest.fail(
        f"{query} returned no series within {timeout} s: {answer}; targets: {summary}"
    )


def test_node_exporter_target_up(deployed, docker_engine):
    result = wait_for_result(docker_engine, 'up{job="node-exporter"} == 1')
    assert len(result) == 1
    assert result[0]["metric"]["job"] == "node-exporter"


def test_cadvisor_and_alertmanager_targets_up(deployed, docker_engine):
    assert wait_for_result(docker_engine, 'up{job="cadvisor"} == 1')
    assert wait_for_result(docker_engine, 'up{job="alertmanager"} == 1')
    assert wait_for_result(docker_engine, 'up{job="prometheus"} == 1')


def test_node_name_from_swarm_hostname(deployed, docker_engine):
    hostname = docker_engine.info()["Name"]
    result = wait_for_result(docker_engine, "node_uname_info")
    assert result[0]["metric"]["nodename"] == hostname


def test_retention_from_env(deployed, docker_engine):
    flags = http_get(docker_engine, "prometheus", 9090, "/api/v1/status/flags")
    assert flags["data"]["storage.tsdb.retention.time"] == "2h"


def test_alert_rules_load(deployed, docker_engine):
    rules = http_get(docker_engine, "prometheus", 9090, "/api/v1/rules")
    assert rules["status"] == "success"
    groups = {group["name"]: group for group in rules["data"]["groups"]}
    assert set(groups) == {"nodes", "tasks"}
    names = {rule["name"] for group in groups.values() for rule in group["rules"]}
    for alert in (
        "NodeExporterDown",
        "NodeHighCpu",
        "NodeHighMemory",
        "NodeDiskAlmostFull",
        "ServiceReplicasBelowDesired",
        "TaskRestarting",
        "TaskHighMemory",
    ):
        assert alert in names


def test_alert_rules_evaluate_without_error(deployed, docker_engine):
    deadline = time.monotonic() + 60
    while True:
        rules = http_get(docker_engine, "prometheus", 9090, "/api/v1/rules")
        all_rules = [
            rule for group in rules["data"]["groups"] for rule in group["rules"]
        ]
        if all(rule.get("lastEvaluation", "").startswith("2") for rule in all_rules):
            break
        assert time.monotonic() < deadline, "rules were not evaluated within 60 s"
        time.sleep(1)
    for rule in all_rules:
        assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"


def test_prometheus_sends_to_alertmanager(deployed, docker_engine):
    deadline = time.monotonic() + 60
    while True:
        answer = http_get(docker_engine, "prometheus", 9090, "/api/v1/alertmanagers")
        active = answer["data"]["activeAlertmanagers"]
        if active or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert len(active) == 1
    assert active[0]["url"].endswith(":9093/api/v2/alerts")


def test_alertmanager_has_no_receiver_integration(deployed, docker_engine):
    status = http_get(docker_engine, "alertmanager", 9093, "/api/v2/status")
    config = yaml.safe_load(status["config"]["original"])
    assert config["route"]["receiver"] == "default"
    assert config["receivers"] == [{"name": "default"}]
    assert "slack_api_url" not in config.get("global", {})


def dashboard_queries(root: Path):
    folder = root / "Docker" / "monitoring" / "grafana" / "dashboards"
    for path in sorted(folder.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                query = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    query = query.replace(variable, value)
                yield f"{path.name}: {panel['title']}", query


def test_dashboard_queries_return_series(deployed, docker_engine):
    _, _, _, root = deployed
    # rate() needs two samples: wait for the second scrape of every job.
    wait_for_result(docker_engine, 'count_over_time(up{job="cadvisor"}[5m]) > 1')
    wait_for_result(docker_engine, 'count_over_time(up{job="node-exporter"}[5m]) > 1')
    queries = list(dashboard_queries(root))
    assert len(queries) >= 12
    for panel, query in queries:
        answer = prometheus_query(docker_engine, query)
        assert answer["status"] == "success", f"{panel}: {answer}"
        assert answer["data"]["result"], f"{panel}: no series for {query}"
        assert not re.search(r"\$\w", query), f"{panel}: unknown variable in {query}"


def test_services_dashboard_names_swarm_services(deployed, docker_engine):
    result = wait_for_result(
        docker_engine,
        "count by (container_label_com_docker_swarm_service_name) "
        f'(container_last_seen{{container_label_com_docker_stack_namespace="{MONITORING}"}})',
    )
    services = {
        series["metric"]["container_label_com_docker_swarm_service_name"]
        for series in result
    }
    assert {f"{MONITORING}_{name}" for name in RUNNING_SERVICES} <= services


def test_configs_named_after_file_digest(deployed):
    _, _, release, _ = deployed
    names = docker(
        "config", "ls", "--filter", f"label=com.docker.stack.namespace={MONITORING}",
        "--format", "{{.Name}}",
    ).stdout.split()  # fmt: skip
    assert len(names) == 8
    for name in names:
        assert name.endswith(f"_{release.config_version}")


def test_redeploy_unchanged_keeps_tasks(deployed, docker_engine):
    from lhd import monitoring

    server, paths, release, _ = deployed
    before = task_container(docker_engine, "prometheus").id
    waited = monitoring.deploy(server, paths, release, wait=0, resolve_image="never")
    assert waited == 0.0
    time.sleep(3)
    assert task_container(docker_engine, "prometheus").id == before


def test_grafana_left_without_image(deployed, docker_engine):
    result = docker(
        "service", "ps", "--no-trunc", "--format", "{{.Error}}", f"{MONITORING}_grafana"
    )
    assert "No such image" in result.stdout or result.stdout.strip() == "", (
        result.stdout
    )
