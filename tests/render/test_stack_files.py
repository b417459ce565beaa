"""The production stack files of a generated project, checked with `docker
stack config` and `docker compose config`, which parse them without an
engine: the schema `docker stack deploy` accepts, and the swarm settings
that the kernel and the rolling updates depend on."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import TEMPLATE, generate

STACK = "demo_stack"
STACK_FILES = ("compose.yml", "compose.prod.yml", "compose.swarm.yml")
TRAEFIK_DIR = "Docker/{% if include_production %}traefik{% endif %}"
ENVIRONMENT = {
    "POSTGRES_USER": "lhd",
    "POSTGRES_PASSWORD": "postgres-password",
    "POSTGRES_DB": "demo",
    "DATABASE_URL": "postgres://lhd:postgres-password@postgres:5432/demo",
    "HASURA_GRAPHQL_ADMIN_SECRET": "admin-secret",
    "HASURA_GRAPHQL_JWT_SECRET": '{"type":"HS256","key":"' + "k" * 40 + '"}',
    "SECRET_KEY_BASE": "k" * 40,
    "SEND_GRID_KEY": "",
    "ADMIN_USER": "admin",
    "ADMIN_PASSWORD_HASH": "$2y$05$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
    "APP_DOMAIN": "example.org",
    "TLS": "true",
    "DATA_DIR": "/srv/demo/data",
    "CERTS_DIR": "/srv/demo/certs",
    "LUCKY_IMAGE": "registry.example.org/demo/demo/lucky:0123abcd",
    "APP_VERSION": "0123abcd",
    "RELEASE_DIR": "/srv/demo/releases/0123abcd",
}
START_FIRST_SERVICES = ("hasura", "lucky", "socket-proxy")
STOP_FIRST_SERVICES = ("postgres", "traefik")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return generate(
        tmp_path_factory.mktemp("stack") / "demo",
        stack_name=STACK,
        include_production=True,
    )


def stack_config(
    project: Path, overrides: dict[str, str] | None = None, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    environment = {"PATH": os.environ["PATH"], **ENVIRONMENT, **(overrides or {})}
    for name in unset:
        environment.pop(name)
    command = ["docker", "stack", "config"]
    for name in STACK_FILES:
        command += ["--compose-file", str(project / "Docker" / name)]
    return subprocess.run(command, capture_output=True, text=True, env=environment)


@pytest.fixture(scope="module")
def stack(project) -> dict:
    result = stack_config(project)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_stack_config_accepts_files(stack):
    assert set(stack["services"]) == {
        "postgres",
        "hasura",
        "lucky",
        "traefik",
        "socket-proxy",
    }


def test_no_top_level_name_or_container_name(project, stack):
    assert "name" not in stack
    for name in STACK_FILES:
        source = yaml.safe_load((project / "Docker" / name).read_text())
        assert "name" not in source, name
        for service, definition in source.get("services", {}).items():
            assert "container_name" not in definition, f"{name}: {service}"


def test_every_service_uses_dnsrr(stack):
    for name, service in stack["services"].items():
        assert service["deploy"]["endpoint_mode"] == "dnsrr", name


def test_ports_published_in_host_mode(stack):
    published = {
        name: service["ports"]
        for name, service in stack["services"].items()
        if service.get("ports")
    }
    assert set(published) == {"traefik"}
    for port in published["traefik"]:
        assert port["mode"] == "host"
    assert {port["published"] for port in published["traefik"]} == {80, 443}


def test_host_ports_follow_variables(project):
    result = stack_config(project, {"HTTP_PORT": "8080", "HTTPS_PORT": "8443"})
    assert result.returncode == 0, result.stderr
    ports = yaml.safe_load(result.stdout)["services"]["traefik"]["ports"]
    assert {port["published"] for port in ports} == {8080, 8443}


@pytest.mark.parametrize("service", START_FIRST_SERVICES)
def test_start_first_update_rolls_back(stack, service):
    deploy = stack["services"][service]["deploy"]
    assert deploy["update_config"]["order"] == "start-first"
    assert deploy["update_config"]["failure_action"] == "rollback"
    assert deploy["update_config"]["monitor"]
    assert deploy["rollback_config"]["order"] == "start-first"
    assert deploy["restart_policy"]["condition"] == "on-failure"


@pytest.mark.parametrize("service", STOP_FIRST_SERVICES)
def test_stop_first_update_rolls_back(stack, service):
    deploy = stack["services"][service]["deploy"]
    assert deploy["update_config"]["order"] == "stop-first"
    assert deploy["update_config"]["failure_action"] == "rollback"
    assert deploy["rollback_config"]["order"] == "stop-first"


def test_postgres_pinned_with_bind_mounted_data(stack):
    postgres = stack["services"]["postgres"]
    assert "node.role == manager" in postgres["deploy"]["placement"]["constraints"]
    assert set(postgres["networks"]) == {"internal", "migrations"}
    (volume,) = postgres["volumes"]
    assert volume["type"] == "bind"
    assert volume["source"] == "/srv/demo/data/postgres"
    assert volume["target"] == "/var/lib/postgresql"


def test_migrations_network_attachable(stack):
    assert stack["networks"]["migrations"]["attachable"] is True
    for name in ("internal", "public", "migrations", "docker-api"):
        assert stack["networks"][name]["driver"] == "overlay", name


def test_hasura_reads_release_metadata(stack):
    hasura = stack["services"]["hasura"]
    (volume,) = hasura["volumes"]
    assert volume["source"] == "/srv/demo/releases/0123abcd/db/hasura"
    assert volume["target"] == "/hasura"
    assert volume["read_only"] is True
    assert (
        hasura["environment"]["HASURA_GRAPHQL_DATABASE_URL"]
        == (ENVIRONMENT["DATABASE_URL"])
    )
    assert "/healthz" in " ".join(hasura["healthcheck"]["test"])


def test_lucky_runs_release_image(stack):
    lucky = stack["services"]["lucky"]
    assert lucky["image"] == ENVIRONMENT["LUCKY_IMAGE"]
    assert lucky["environment"]["APP_VERSION"] == "0123abcd"
    assert lucky["healthcheck"]["test"] == ["CMD", "bin/healthcheck"]


def test_only_socket_proxy_mounts_docker_socket(stack):
    for name, service in stack["services"].items():
        sockets = [
            volume
            for volume in service.get("volumes", [])
            if volume["source"] == "/var/run/docker.sock"
        ]
        if name == "socket-proxy":
            assert len(sockets) == 1
            assert sockets[0]["read_only"] is True
        else:
            assert sockets == [], name


def test_socket_proxy_read_only(stack):
    environment = stack["services"]["socket-proxy"]["environment"]
    assert environment["POST"] == "0"
    for section in ("CONTAINERS", "NETWORKS", "SERVICES", "SWARM", "TASKS"):
        assert environment[section] == "1", section
    assert set(stack["services"]["socket-proxy"]["networks"]) == {"docker-api"}


def test_traefik_static_configuration(stack):
    command = stack["services"]["traefik"]["command"]
    assert "--providers.swarm.endpoint=tcp://socket-proxy:2375" in command
    assert "--providers.swarm.exposedByDefault=false" in command
    assert f"--providers.swarm.network={STACK}_public" in command
    assert "--entrypoints.web.address=:80" in command
    assert "--entrypoints.websecure.address=:443" in command
    assert (
        "--providers.swarm.constraints=Label(`com.docker.stack.namespace`, "
        f"`{STACK}`) || Label(`com.docker.stack.namespace`, `{STACK}_monitoring`)"
    ) in command


@pytest.mark.parametrize("tls", ["true", "false"])
def test_routers_follow_tls_setting(project, tls):
    result = stack_config(project, {"TLS": tls})
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in ("hasura", "lucky", "traefik"):
        labels = services[name]["deploy"]["labels"]
        tls_labels = {
            key: value for key, value in labels.items() if key.endswith(".tls")
        }
        assert tls_labels, name
        assert set(tls_labels.values()) == {tls}, name
    assert services["traefik"]["environment"]["TLS"] == tls


def test_routing_rules(stack):
    hasura = stack["services"]["hasura"]["deploy"]["labels"]
    lucky = stack["services"]["lucky"]["deploy"]["labels"]
    traefik = stack["services"]["traefik"]["deploy"]["labels"]
    assert hasura[f"traefik.http.routers.{STACK}-hasura.rule"] == (
        "Host(`api.example.org`) && Path(`/v1/graphql`)"
    )
    assert (
        lucky[f"traefik.http.routers.{STACK}-lucky.rule"] == "Host(`api.example.org`)"
    )
    assert traefik[f"traefik.http.routers.{STACK}-dashboard.rule"] == (
        "Host(`traefik.example.org`)"
    )
    assert traefik[f"traefik.http.routers.{STACK}-dashboard.service"] == "api@internal"
    assert traefik[f"traefik.http.routers.{STACK}-dashboard.middlewares"] == (
        "admin-auth@file"
    )


def test_missing_release_variable_named(project):
    result = stack_config(project, unset=("LUCKY_IMAGE",))
    assert result.returncode != 0
    assert "LUCKY_IMAGE" in result.stderr


def test_prod_pair_valid_without_swarm(project, compose_command):
    environment = {"PATH": os.environ["PATH"], **ENVIRONMENT}
    command = [*compose_command, "--project-name", "demo"]
    for name in STACK_FILES[:2]:
        command += ["--file", str(project / "Docker" / name)]
    result = subprocess.run(
        [*command, "config", "--quiet"], capture_output=True, text=True, env=environment
    )
    assert result.returncode == 0, result.stderr


def test_traefik_templates_kept_verbatim(project):
    for name in ("middlewares.yml", "tls.yml"):
        rendered = (project / "Docker" / "traefik" / "dynamic" / name).read_bytes()
        assert rendered == (TEMPLATE / TRAEFIK_DIR / "dynamic" / name).read_bytes()
    tls = (project / "Docker" / "traefik" / "dynamic" / "tls.yml").read_text()
    assert '{{- if eq (env "TLS") "true" }}' in tls


def test_no_stack_files_without_production(tmp_path):
    root = generate(tmp_path / "demo", include_production=False)
    assert not (root / "Docker" / "compose.prod.yml").exists()
    assert not (root / "Docker" / "compose.swarm.yml").exists()
    assert (root / "Docker" / "compose.yml").exists()
