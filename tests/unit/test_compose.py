from pathlib import Path

from lhd.compose import Compose

COMPOSE = Compose(
    command=("docker", "compose"),
    project="demo",
    files=(Path("/p/Docker/compose.yml"), Path("/p/Docker/compose.dev.yml")),
    env_file=Path("/p/.env"),
)
BASE = [
    "docker", "compose", "--project-name", "demo", "--env-file", "/p/.env",
    "--file", "/p/Docker/compose.yml", "--file", "/p/Docker/compose.dev.yml",
]  # fmt: skip


def test_base_passes_env_file_and_files():
    assert COMPOSE.base() == BASE


def test_up_detaches_without_build():
    assert COMPOSE.up(["postgres"]) == [
        *BASE, "up", "--detach", "--no-build", "--remove-orphans", "postgres",
    ]  # fmt: skip


def test_up_renews_app_volumes_alone():
    argv = COMPOSE.up(["lucky"], renew_anon_volumes=True, no_deps=True)
    assert argv[-3:] == ["--renew-anon-volumes", "--no-deps", "lucky"]


def test_run_without_terminal_adds_t():
    assert COMPOSE.run("lucky", ["crystal", "spec"], tty=False) == [
        *BASE, "run", "--rm", "--no-deps", "-T", "lucky", "crystal", "spec",
    ]  # fmt: skip


def test_run_with_terminal_omits_t():
    assert "-T" not in COMPOSE.run("lucky", ["sh"], tty=True)


def test_exec_detached():
    assert COMPOSE.exec("hasura", ["hasura-cli"], tty=False, detach=True) == [
        *BASE, "exec", "--detach", "-T", "hasura", "hasura-cli",
    ]  # fmt: skip


def test_down_keeps_volumes_by_default():
    assert COMPOSE.down() == [*BASE, "down", "--remove-orphans"]
    assert COMPOSE.down(volumes=True)[-1] == "--volumes"


def test_remove_containers_drops_anonymous_volumes():
    assert COMPOSE.remove_containers() == [
        *BASE,
        "rm",
        "--stop",
        "--force",
        "--volumes",
    ]


def test_logs_follow_tail():
    assert COMPOSE.logs(["lucky"], follow=True, tail="20") == [
        *BASE, "logs", "--tail", "20", "--follow", "lucky",
    ]  # fmt: skip


def test_host_address_follows_remote_engine(monkeypatch):
    from lhd import dev

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert dev.host_address({"BIND_ADDRESS": "0.0.0.0"}) == "127.0.0.1"
    assert dev.host_address({"BIND_ADDRESS": "127.0.0.5"}) == "127.0.0.5"
    monkeypatch.setenv("DOCKER_HOST", "tcp://docker:2376")
    assert dev.host_address({"BIND_ADDRESS": "127.0.0.1"}) == "docker"
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert dev.host_address({}) == "127.0.0.1"
