"""Command builders of the production tasks: each returns an argument list."""

from __future__ import annotations

from lhd import backup, bootstrap, deploy, lock, registry, release, remote, swarm
from lhd.server import ServerPaths

PATHS = ServerPaths(home="/home/deploy", stack="shop")
ENV = "/home/deploy/shop/.env.production"
IMAGE = "registry.example.org/me/shop/lucky:0123abcd"


def test_env_file_wrapper_passes_file_as_parameter():
    argv = remote.with_env_file(ENV, ["docker", "info"], {"APP_VERSION": "0123abcd"})
    assert argv == [
        "sh", "-c", 'set -a && . "$1" && set +a && shift && exec "$@"',
        "lhd-env", ENV, "env", "APP_VERSION=0123abcd", "docker", "info",
    ]  # fmt: skip


def test_env_file_wrapper_without_extra_values():
    argv = remote.with_env_file(ENV, ["docker", "info"])
    assert argv[4:] == [ENV, "docker", "info"]


def test_server_paths():
    assert PATHS.env_file == ENV
    assert PATHS.postgres_dir == "/home/deploy/shop/data/postgres"
    assert PATHS.cert_file == "/home/deploy/shop/certs/cert.pem"
    assert PATHS.release_dir("0123abcd") == "/home/deploy/shop/releases/0123abcd"
    assert PATHS.lock_owner == "/home/deploy/shop/deploy.lock/owner.json"
    assert PATHS.current == "/home/deploy/shop/current"


def test_lock_commands():
    assert lock.acquire_argv(PATHS) == ["mkdir", "/home/deploy/shop/deploy.lock"]
    assert lock.release_argv(PATHS) == ["rm", "-rf", "/home/deploy/shop/deploy.lock"]


def test_release_commands():
    assert release.extract_argv("/r/a.tar", "/r/a") == [
        "tar",
        "-x",
        "-f",
        "/r/a.tar",
        "-C",
        "/r/a",
    ]
    assert release.link_argv("/r/a", "/c") == ["ln", "-sfn", "/r/a", "/c"]
    assert release.list_argv(PATHS) == ["ls", "-1t", "/home/deploy/shop/releases"]


def test_registry_commands():
    assert registry.login_argv("registry.example.org", "me") == [
        "docker", "login", "--username", "me", "--password-stdin", "registry.example.org",
    ]  # fmt: skip
    assert registry.pull_argv(IMAGE) == ["docker", "pull", "--quiet", IMAGE]
    assert registry.remove_argv([IMAGE]) == ["docker", "image", "rm", IMAGE]
    assert registry.list_tags_argv("r.example.org/me/shop/lucky") == [
        "docker", "image", "ls", "--format", "{{.Tag}}", "r.example.org/me/shop/lucky",
    ]  # fmt: skip


def test_stack_deploy_command():
    files = swarm.stack_files("/home/deploy/shop/releases/0123abcd")
    assert swarm.deploy_argv("shop", files) == [
        "docker", "stack", "deploy", "--detach=true", "--prune", "--with-registry-auth",
        "--resolve-image", "always",
        "--compose-file", "/home/deploy/shop/releases/0123abcd/Docker/compose.yml",
        "--compose-file", "/home/deploy/shop/releases/0123abcd/Docker/compose.prod.yml",
        "--compose-file", "/home/deploy/shop/releases/0123abcd/Docker/compose.swarm.yml",
        "shop",
    ]  # fmt: skip


def test_deploy_variables_are_not_secret():
    assert swarm.deploy_env(IMAGE, "0123abcd", "/r") == {
        "LUCKY_IMAGE": IMAGE,
        "APP_VERSION": "0123abcd",
        "RELEASE_DIR": "/r",
    }


def test_service_commands():
    assert swarm.services_argv("shop") == [
        "docker", "service", "ls", "--filter", "label=com.docker.stack.namespace=shop",
        "--format", "{{.Name}}",
    ]  # fmt: skip
    assert swarm.tasks_argv("shop_lucky") == [
        "docker", "service", "ps", "--no-trunc", "--format", "{{json .}}", "shop_lucky",
    ]  # fmt: skip
    assert swarm.scale_argv({"shop_lucky": 0, "shop_hasura": 0}) == [
        "docker", "service", "scale", "--detach=false", "shop_lucky=0", "shop_hasura=0",
    ]  # fmt: skip
    assert swarm.logs_argv("shop_lucky", True, "20") == [
        "docker", "service", "logs", "--timestamps", "--tail", "20", "--follow", "shop_lucky",
    ]  # fmt: skip


def test_backup_commands():
    assert backup.dump_argv("c0ffee", "/b/x.dump") == [
        "sh", "-c", 'umask 077 && out="$1" && shift && "$@" > "$out"', "lhd-backup", "/b/x.dump",
        "docker", "exec", "c0ffee", "sh", "-c",
        'exec pg_dump --format=custom --username "$POSTGRES_USER" "$POSTGRES_DB"',
    ]  # fmt: skip
    restore = backup.restore_argv("c0ffee", "/b/x.dump")
    assert restore[:5] == [
        "sh",
        "-c",
        'in="$1" && shift && exec "$@" < "$in"',
        "lhd-restore",
        "/b/x.dump",
    ]
    assert restore[5:9] == ["docker", "exec", "--interactive", "c0ffee"]
    assert "pg_restore --clean --if-exists" in restore[-1]


def test_migration_command_passes_variables_by_name():
    argv = deploy.migrate_argv("shop", IMAGE, "0123abcd", ENV)
    inner = argv[argv.index("docker") :]
    assert argv[:7] == [
        "sh", "-c", remote.ENV_FILE_SCRIPT, "lhd-env", ENV, "env", "APP_VERSION=0123abcd",
    ]  # fmt: skip
    assert inner == [
        "docker", "run", "--rm", "--network", "shop_migrations",
        "--env", "DATABASE_URL", "--env", "SECRET_KEY_BASE",
        "--env", "SEND_GRID_KEY", "--env", "APP_VERSION", IMAGE,
        "sh", "-ec", 'for task in "$@"; do lucky "$task"; done', "lucky-tasks",
        "db.create", "db.migrate", "db.seed.required_data",
    ]  # fmt: skip


def test_rollback_commands():
    argv = deploy.rollback_to_argv("shop", IMAGE, "0123abcd", ENV, "20240101000000")
    assert argv[-3:] == ["lucky", "db.rollback_to", "20240101000000"]
    assert deploy.last_migration_argv(IMAGE) == [
        "docker",
        "run",
        "--rm",
        IMAGE,
        "bin/last_migration",
    ]
    assert deploy.seed_argv("shop", IMAGE, "0123abcd", ENV)[-2:] == [
        "lucky",
        "db.seed.required_data",
    ]


def test_bootstrap_commands():
    assert bootstrap.mkdir_argv(PATHS)[:2] == ["mkdir", "-p"]
    assert "/home/deploy/shop/backups" in bootstrap.mkdir_argv(PATHS)
    assert bootstrap.swarm_init_argv("10.0.0.5") == [
        "docker", "swarm", "init", "--advertise-addr", "10.0.0.5",
    ]  # fmt: skip
    assert bootstrap.swarm_state_argv() == [
        "docker", "info", "--format", "{{.Swarm.LocalNodeState}}",
    ]  # fmt: skip


def test_server_address_from_ssh_connection():
    assert bootstrap.server_address("10.0.0.9 51022 10.0.0.5 22") == "10.0.0.5"
    assert bootstrap.server_address("") is None


def test_release_retention_keeps_protected():
    names = ["e", "d", "c", "b", "a"]
    assert release.releases_to_remove(names, 2, ["a"]) == ["c", "b"]
    assert release.releases_to_remove(names, 10, []) == []


def test_backup_retention_by_name():
    names = [
        "20250101T000000Z-aaaaaaaa.dump",
        "20250103T000000Z-cccccccc.dump",
        "20250102T000000Z-bbbbbbbb.dump",
        "notes.txt",
    ]
    assert backup.backups_to_remove(names, 2) == ["20250101T000000Z-aaaaaaaa.dump"]


def test_backup_path_resolution():
    assert backup.resolve(PATHS, "x.dump") == "/home/deploy/shop/backups/x.dump"
    assert backup.resolve(PATHS, "/tmp/x.dump") == "/tmp/x.dump"
