from lhd import adopt

LUCKY_COMPOSE = (
    "services:\n  lucky:\n    build:\n      dockerfile: docker/development.dockerfile\n"
)


def lucky_docker_files(root):
    (root / "docker").mkdir()
    for name in adopt.LUCKY_DOCKER_FILES:
        (root / name).write_text("# lucky\n")
    (root / "docker-compose.yml").write_text(LUCKY_COMPOSE)


def test_removes_lucky_docker_files(tmp_path):
    lucky_docker_files(tmp_path)
    removed = adopt.adopt(tmp_path)
    assert sorted(removed) == sorted([*adopt.LUCKY_DOCKER_FILES, "docker-compose.yml"])
    assert not (tmp_path / "docker").exists()
    assert not (tmp_path / "docker-compose.yml").exists()


def test_keeps_user_compose_file(tmp_path):
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  web:\n    image: nginx\n"
    )
    assert adopt.adopt(tmp_path) == []
    assert (tmp_path / "docker-compose.yml").exists()


def test_keeps_other_files_in_docker_folder(tmp_path):
    lucky_docker_files(tmp_path)
    (tmp_path / "docker" / "mine.sh").write_text("echo\n")
    adopt.adopt(tmp_path)
    assert (tmp_path / "docker" / "mine.sh").exists()


def test_empty_folder_is_a_no_op(tmp_path):
    assert adopt.adopt(tmp_path) == []


def test_gitignore_gets_missing_rules(tmp_path):
    (tmp_path / ".gitignore").write_text("/lib/\n.env")
    assert adopt.ensure_gitignore(tmp_path) == [
        ".env.production",
        "/.lhd/",
        "__pycache__/",
    ]
    text = (tmp_path / ".gitignore").read_text()
    assert text.startswith("/lib/\n.env\n")
    assert text.count(".env\n") == 1
    assert adopt.ensure_gitignore(tmp_path) == []


def test_watch_settings_keep_other_keys(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "watch.yml").write_text(
        "host: 127.0.0.1\nport: 3000\nreload_port: 3001\n"
    )
    assert adopt.ensure_watch_settings(tmp_path) == ["host: 0.0.0.0", "port: 5000"]
    assert (
        tmp_path / "config" / "watch.yml"
    ).read_text() == "host: 0.0.0.0\nport: 5000\nreload_port: 3001\n"
    assert adopt.ensure_watch_settings(tmp_path) == []
