"""The monitoring files of a generated project: the stack file passes
`docker stack config`, Prometheus, its rules and the Alertmanager
configuration pass promtool and amtool (run in the Debian builds of
tests/images), and the Grafana provisioning files parse and fit together.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import TEMPLATE, generate

STACK = "demo_stack"
DOMAIN = "demo.example.org"
MONITORING = Path("Docker") / "monitoring"
TEMPLATE_MONITORING = (
    TEMPLATE / "Docker" / "{% if include_monitoring %}monitoring{% endif %}"
)
STACK_ENV = {
    "ADMIN_USER": "admin",
    "ADMIN_PASSWORD": "s3cret",
    "APP_DOMAIN": DOMAIN,
    "TLS": "true",
}
# Metric name prefixes that node-exporter and cAdvisor export.
EXPORTED_PREFIXES = ("node_", "container_", "machine_")
METRIC_NAME = re.compile(r"\b((?:node|container|machine)_[A-Za-z0-9_]+)")
ALERTMANAGER_CONFIG = "/tmp/alertmanager/alertmanager.yml"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("monitoring_render") / "demo_app"
    generate(root, stack_name=STACK, app_domain=DOMAIN)
    return root


@pytest.fixture(scope="module")
def monitoring_dir(project) -> Path:
    return project / MONITORING


def stack_config(folder: Path, **env: str) -> dict:
    result = subprocess.run(
        ["docker", "stack", "config", "--compose-file", "compose.yml"],
        cwd=folder,
        # Only these variables: a value from the caller's environment must
        # not hide a missing default.
        env={
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/"),
            **STACK_ENV,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_monitoring_folder_only_when_chosen(tmp_path):
    root = generate(tmp_path / "plain", include_monitoring=False)
    assert not (root / MONITORING).exists()


def test_plain_files_copied_verbatim(monitoring_dir):
    for source in TEMPLATE_MONITORING.rglob("*"):
        if source.is_dir() or source.suffix == ".jinja":
            continue
        target = monitoring_dir / source.relative_to(TEMPLATE_MONITORING)
        assert target.read_bytes() == source.read_bytes(), target


def test_stack_config_passes(monitoring_dir):
    config = stack_config(monitoring_dir)
    assert set(config["services"]) == {
        "prometheus",
        "alertmanager",
        "grafana",
        "node-exporter",
        "cadvisor",
    }


def test_every_service_uses_dnsrr_without_ports(monitoring_dir):
    services = stack_config(monitoring_dir)["services"]
    for name, service in services.items():
        assert service["deploy"]["endpoint_mode"] == "dnsrr", name
        assert "ports" not in service, name


def test_exporters_run_on_every_node(monitoring_dir):
    services = stack_config(monitoring_dir)["services"]
    assert services["node-exporter"]["deploy"]["mode"] == "global"
    assert services["cadvisor"]["deploy"]["mode"] == "global"


def test_public_network_of_app_stack(monitoring_dir):
    config = stack_config(monitoring_dir)
    assert config["networks"]["public"] == {
        "name": f"{STACK}_public",
        "external": True,
    }
    for name in ("prometheus", "alertmanager", "grafana"):
        assert "public" in config["services"][name]["networks"], name


def test_traefik_routes_subdomains(monitoring_dir):
    services = stack_config(monitoring_dir)["services"]
    for name, port in (("prometheus", 9090), ("alertmanager", 9093), ("grafana", 3000)):
        labels = services[name]["deploy"]["labels"]
        router = f"traefik.http.routers.{STACK}-{name}"
        assert labels["traefik.enable"] == "true"
        assert labels["traefik.swarm.network"] == f"{STACK}_public"
        assert labels[f"{router}.rule"] == f"Host(`{name}.{DOMAIN}`)"
        assert labels[f"{router}.entrypoints"] == "web,websecure"
        assert labels[f"{router}.tls"] == "true"
        service_port = f"traefik.http.services.{STACK}-{name}.loadbalancer.server.port"
        assert labels[service_port] == str(port)


def test_basic_auth_without_own_login(monitoring_dir):
    services = stack_config(monitoring_dir)["services"]
    for name in ("prometheus", "alertmanager"):
        labels = services[name]["deploy"]["labels"]
        assert labels[f"traefik.http.routers.{STACK}-{name}.middlewares"] == (
            "admin-auth@file"
        )
    grafana = services["grafana"]["deploy"]["labels"]
    assert f"traefik.http.routers.{STACK}-grafana.middlewares" not in grafana


def test_tls_false_reaches_routers(monitoring_dir):
    services = stack_config(monitoring_dir, TLS="false")["services"]
    labels = services["grafana"]["deploy"]["labels"]
    assert labels[f"traefik.http.routers.{STACK}-grafana.tls"] == "false"


def test_grafana_admin_from_env(monitoring_dir):
    environment = stack_config(monitoring_dir)["services"]["grafana"]["environment"]
    assert environment["GF_SECURITY_ADMIN_USER"] == "admin"
    assert environment["GF_SECURITY_ADMIN_PASSWORD"] == "s3cret"
    assert environment["GF_ANALYTICS_REPORTING_ENABLED"] == "false"


def test_retention_default_and_override(monitoring_dir):
    flag = "--storage.tsdb.retention.time="
    default = stack_config(monitoring_dir)["services"]["prometheus"]["command"]
    assert f"{flag}15d" in default
    changed = stack_config(monitoring_dir, PROMETHEUS_RETENTION="90d")
    assert f"{flag}90d" in changed["services"]["prometheus"]["command"]


def test_slack_settings_empty_by_default(monitoring_dir):
    environment = stack_config(monitoring_dir)["services"]["alertmanager"][
        "environment"
    ]
    assert environment == {"SLACK_URL": "", "SLACK_CHANNEL": "", "SLACK_USER": ""}


def test_images_overridable(monitoring_dir):
    overrides = {
        "PROMETHEUS_IMAGE": "local/prometheus:1",
        "ALERTMANAGER_IMAGE": "local/alertmanager:1",
        "GRAFANA_IMAGE": "local/grafana:1",
        "NODE_EXPORTER_IMAGE": "local/node-exporter:1",
        "CADVISOR_IMAGE": "local/cadvisor:1",
    }
    services = stack_config(monitoring_dir, **overrides)["services"]
    for variable, image in overrides.items():
        name = variable.removesuffix("_IMAGE").lower().replace("_", "-")
        assert services[name]["image"] == image


def test_config_names_carry_version(monitoring_dir):
    configs = stack_config(monitoring_dir, MONITORING_CONFIG_VERSION="abc123")[
        "configs"
    ]
    assert len(configs) == 8
    for key, config in configs.items():
        assert config["name"].startswith(f"{STACK}_monitoring_"), key
        assert config["name"].endswith("_abc123"), key
        assert Path(config["file"]).is_file(), key


def run_tool(image: str, folder: Path, mount: str, *argv: str):
    return subprocess.run(
        [
            "docker", "run", "--rm", "--network", "none",
            "--volume", f"{folder}:{mount}:ro",
            "--entrypoint", argv[0], image, *argv[1:],
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def test_promtool_check_config(monitoring_dir, test_images):
    # Mounted where the stack puts the files, so rule_files resolve.
    result = run_tool(
        test_images["prometheus"],
        monitoring_dir / "prometheus",
        "/etc/prometheus",
        "promtool",
        "check",
        "config",
        "/etc/prometheus/prometheus.yml",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout + result.stderr


def test_promtool_check_rules(monitoring_dir, test_images):
    result = run_tool(
        test_images["prometheus"],
        monitoring_dir / "prometheus",
        "/etc/prometheus",
        "promtool",
        "check",
        "rules",
        "/etc/prometheus/rules/nodes.yml",
        "/etc/prometheus/rules/tasks.yml",
    )
    assert result.returncode == 0, result.stdout + result.stderr


# Task "a" of app_lucky stops reporting after 20 minutes, and its series
# goes stale 5 minutes later. So the service runs fewer tasks from 26
# minutes on, and the alert fires after its 5 minutes of `for`, at 31.
RULE_TESTS = """\
rule_files:
  - /etc/prometheus/rules/nodes.yml
  - /etc/prometheus/rules/tasks.yml
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="node-exporter", instance="10.0.0.5:9100"}'
        values: '1 1 0 0 0 0 0'
      - series: 'container_last_seen{container_label_com_docker_swarm_service_name="app_lucky", id="a"}'
        values: '1x20 _x20'
      - series: 'container_last_seen{container_label_com_docker_swarm_service_name="app_lucky", id="b"}'
        values: '1x40'
    alert_rule_test:
      - eval_time: 6m
        alertname: NodeExporterDown
        exp_alerts:
          - exp_labels:
              severity: critical
              job: node-exporter
              instance: 10.0.0.5:9100
            exp_annotations:
              summary: "node-exporter at 10.0.0.5:9100 does not respond"
              description: "Prometheus has failed to scrape 10.0.0.5:9100 for 2 minutes: the node or its node-exporter task is down."
      - eval_time: 18m
        alertname: ServiceReplicasBelowDesired
        exp_alerts: []
      - eval_time: 28m
        alertname: ServiceReplicasBelowDesired
        exp_alerts: []
      - eval_time: 33m
        alertname: ServiceReplicasBelowDesired
        exp_alerts:
          - exp_labels:
              severity: critical
              container_label_com_docker_swarm_service_name: app_lucky
            exp_annotations:
              summary: "app_lucky runs 1 tasks, fewer than before"
              description: "The service has run fewer containers for 5 minutes than it ran steadily 10 to 20 minutes ago. Check `docker service ps --no-trunc app_lucky`."
"""


def test_promtool_rule_unit_tests(monitoring_dir, test_images, tmp_path):
    (tmp_path / "tests.yml").write_text(RULE_TESTS)
    # promtool runs as nobody, as in the official image.
    tmp_path.chmod(0o755)
    (tmp_path / "tests.yml").chmod(0o644)
    result = subprocess.run(
        [
            "docker", "run", "--rm", "--network", "none",
            "--volume", f"{monitoring_dir / 'prometheus'}:/etc/prometheus:ro",
            "--volume", f"{tmp_path}:/tests:ro",
            "--entrypoint", "promtool", test_images["prometheus"],
            "test", "rules", "/tests/tests.yml",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def alertmanager_config(image: str, folder: Path, env: dict[str, str]) -> tuple:
    """Start the stack's Alertmanager entrypoint; return its config and amtool's verdict."""
    name = f"lhdtest-alertmanager-{time.monotonic_ns()}"
    options = [
        item for key, value in env.items() for item in ("--env", f"{key}={value}")
    ]
    subprocess.run(
        [
            "docker", "run", "--detach", "--name", name, "--network", "none",
            "--volume", f"{folder}:/etc/alertmanager:ro", *options,
            "--entrypoint", "/bin/sh", image, "/etc/alertmanager/entrypoint.sh",
            "--storage.path=/alertmanager", "--cluster.listen-address=",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            shown = subprocess.run(
                ["docker", "exec", name, "cat", ALERTMANAGER_CONFIG],
                capture_output=True,
                text=True,
            )
            if shown.returncode == 0 and "receivers:" in shown.stdout:
                break
            assert time.monotonic() < deadline, shown.stderr
            time.sleep(0.2)
        checked = subprocess.run(
            ["docker", "exec", name, "amtool", "check-config", ALERTMANAGER_CONFIG],
            capture_output=True,
            text=True,
        )
        url = subprocess.run(
            ["docker", "exec", name, "cat", "/tmp/alertmanager/slack_url"],
            capture_output=True,
            text=True,
        )
        return yaml.safe_load(shown.stdout), checked, url
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True)


def test_alertmanager_without_slack(monitoring_dir, test_images):
    config, checked, url = alertmanager_config(
        test_images["alertmanager"], monitoring_dir / "alertmanager", {}
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert config["receivers"] == [{"name": "default"}]
    assert config["route"]["receiver"] == "default"
    assert url.returncode != 0


def test_alertmanager_with_slack(monitoring_dir, test_images):
    # A loopback URL: amtool only checks it, and nothing is sent.
    env = {
        "SLACK_URL": "http://127.0.0.1:9/services/hook",
        "SLACK_CHANNEL": "#ops 'alerts'",
        "SLACK_USER": "LHD bot",
    }
    config, checked, url = alertmanager_config(
        test_images["alertmanager"], monitoring_dir / "alertmanager", env
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (slack,) = config["receivers"][0]["slack_configs"]
    assert slack["channel"] == "#ops 'alerts'"
    assert slack["username"] == "LHD bot"
    assert slack["api_url_file"] == "/tmp/alertmanager/slack_url"
    assert "api_url" not in slack
    assert url.stdout == env["SLACK_URL"]


def test_grafana_datasource_provisioning(monitoring_dir):
    path = (
        monitoring_dir / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    )
    config = yaml.safe_load(path.read_text())
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    assert source["type"] == "prometheus"
    assert source["uid"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"


def test_grafana_dashboard_provider(monitoring_dir, project):
    path = monitoring_dir / "grafana" / "provisioning" / "dashboards" / "lhd.yml"
    config = yaml.safe_load(path.read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    folder = provider["options"]["path"]
    services = stack_config(monitoring_dir)["services"]
    targets = [entry["target"] for entry in services["grafana"]["configs"]]
    assert f"{folder}/nodes.json" in targets
    assert f"{folder}/services.json" in targets


@pytest.mark.parametrize("name", ["nodes", "services"])
def test_dashboard_panels_query_exporters(monitoring_dir, name):
    path = monitoring_dir / "grafana" / "dashboards" / f"{name}.json"
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] == f"lhd-{name}"
    panels = dashboard["panels"]
    assert len(panels) >= 6
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"]["uid"] == "prometheus", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            metrics = METRIC_NAME.findall(target["expr"])
            assert metrics, f"{panel['title']}: no exporter metric in {target['expr']}"
            for metric in metrics:
                assert metric.startswith(EXPORTED_PREFIXES), metric


def test_nodes_dashboard_covers_resources(monitoring_dir):
    dashboard = json.loads(
        (monitoring_dir / "grafana" / "dashboards" / "nodes.json").read_text()
    )
    queries = " ".join(
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
    )
    for metric in (
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "node_filesystem_avail_bytes",
        "container_network_receive_bytes_total",
    ):
        assert metric in queries


def test_services_dashboard_groups_by_service(monitoring_dir):
    dashboard = json.loads(
        (monitoring_dir / "grafana" / "dashboards" / "services.json").read_text()
    )
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert "container_label_com_docker_swarm_service_name" in target["expr"]


def test_fab_lists_swarmprom(project):
    fab = Path(sys.executable).parent / "fab"
    listed = subprocess.run(
        [str(fab), "--list"], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert re.search(
        r"^\s+swarmprom\s+Deploy the monitoring stack", listed.stdout, re.M
    ), listed.stdout
    helped = subprocess.run(
        [str(fab), "--help", "swarmprom"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert helped.returncode == 0, helped.stderr
    assert "Example: fab -H deploy@example.org swarmprom" in helped.stdout
    assert "--timeout" in helped.stdout
