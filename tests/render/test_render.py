"""`copier copy` with every answer that changes the output."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, TEMPLATE, copy_fixture_app, generate

# Files that must reach the project byte for byte because they hold Go
# templates or CI expressions of their own.
VERBATIM = {
    "Docker/traefik/dynamic/middlewares.yml": (
        "Docker/{% if include_production %}traefik{% endif %}/dynamic/middlewares.yml",
        '{{ env "ADMIN_USER" }}',
    ),
    ".github/workflows/ci.yml": (
        "{% if ci_provider == 'github' %}.github{% endif %}/workflows/ci.yml",
        "${{ secrets.DEPLOY_KEY }}",
    ),
}
JINJA_LEFTOVER = re.compile(
    r"{%|%}|{{\s*(?:project_name|registry_|stack_name|app_domain|ci_provider|include_|_copier)"
)
ANSWER_SETS = [
    {
        "ci_provider": ci,
        "include_production": production,
        "include_monitoring": monitoring,
    }
    for ci, production, monitoring in itertools.product(
        ("gitlab", "github", "none"), (True, False), (True, False)
    )
    if production or not monitoring
]


def answer_id(answers):
    return "-".join(f"{key.split('_')[-1]}={value}" for key, value in answers.items())


@pytest.fixture(scope="module", params=ANSWER_SETS, ids=answer_id)
def rendered(request, tmp_path_factory):
    destination = tmp_path_factory.mktemp("render") / "demo_app"
    generate(destination, **request.param)
    return destination, request.param


def project_files(root: Path):
    return [
        path for path in root.rglob("*") if path.is_file() and ".git" not in path.parts
    ]


def test_no_jinja_left(rendered):
    root, _ = rendered
    for path in project_files(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        assert not JINJA_LEFTOVER.search(text), (
            f"unrendered Jinja in {path.relative_to(root)}"
        )


def test_no_template_suffix_or_empty_name(rendered):
    root, _ = rendered
    for path in project_files(root):
        assert not path.name.endswith(".jinja"), path
        assert "{" not in str(path.relative_to(root)), path


def test_conditional_files(rendered):
    root, answers = rendered
    assert (root / ".gitlab-ci.yml").exists() == (answers["ci_provider"] == "gitlab")
    assert (root / ".github").exists() == (answers["ci_provider"] == "github")
    assert (root / "Docker" / "traefik").exists() == answers["include_production"]
    settings = (root / "lhd.toml").read_text()
    assert ("stack_name" in settings) == answers["include_production"]


def test_verbatim_files_unchanged(rendered):
    root, _ = rendered
    for target, (source, expression) in VERBATIM.items():
        if not (root / target).exists():
            continue
        rendered_bytes = (root / target).read_bytes()
        assert rendered_bytes == (TEMPLATE / source).read_bytes()
        assert expression.encode() in rendered_bytes


def test_answers_file_records_answers(rendered):
    root, answers = rendered
    text = (root / ".copier-answers.yml").read_text()
    assert "_commit:" in text
    assert f"ci_provider: {answers['ci_provider']}" in text
    assert "project_name: demo_app" not in text  # the fixture answers fixture_app
    assert "project_name: fixture_app" in text


def test_generated_python_imports_and_lints(rendered):
    root, _ = rendered
    imported = subprocess.run(
        [sys.executable, "-c", "import tasks, lhd.dev, lhd.status, lhd.adopt"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
    lint = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--select",
            "E9,F",
            "lhd",
            "tasks.py",
        ],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_inv_list_shows_tasks(rendered):
    root, _ = rendered
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "inv"), "--list"],
        cwd=root / "db",
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr
    for name in ("up", "down", "test", "build", "logs", "shell", "status"):
        assert re.search(rf"^\s+{name}\s", listed.stdout, re.MULTILINE), listed.stdout


def write_env(root: Path):
    sys.path.insert(0, str(root))
    from lhd import devenv, settings

    return devenv.sync(settings.load(root))


@pytest.mark.parametrize(
    "files",
    [
        ("compose.yml", "compose.dev.yml"),
        ("compose.yml", "compose.test.yml"),
        ("compose.yml", "compose.test.yml", "compose.image.yml"),
    ],
    ids=["dev", "test", "test-image"],
)
def test_compose_config_valid(rendered, compose_command, files):
    root, _ = rendered
    write_env(root)
    argv = [
        *compose_command,
        "--env-file",
        str(root / ".env"),
        "--project-name",
        "demo",
    ]
    for name in files:
        argv += ["--file", str(root / "Docker" / name)]
    result = subprocess.run(
        [*argv, "config", "--format", "json"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "LUCKY_IMAGE": "demo/lucky:abc"},
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert set(config["services"]) == {"postgres", "hasura", "lucky"}
    assert all(
        "container_name" not in service for service in config["services"].values()
    )
    if "compose.image.yml" in files:
        assert config["services"]["lucky"]["image"] == "demo/lucky:abc"
        assert not config["services"]["lucky"].get("volumes")


def test_invalid_answers_rejected(tmp_path):
    cases = {
        "project_name": ("Bad-Name", "single underscores between words"),
        "app_domain": ("https://x.org", "lowercase host name"),
        "registry_namespace": ("Has Space", "lowercase"),
        "registry_host": ("bad host", "host name with an"),
        "stack_name": ("9stack", "starting with a letter"),
    }
    for question, (value, hint) in cases.items():
        destination = tmp_path / question
        with pytest.raises(ValueError, match=hint) as raised:
            generate(destination, **{question: value})
        assert question in str(raised.value)
        assert not destination.exists(), "a rejected answer must leave nothing behind"


def test_default_project_name_from_folder(tmp_path):
    import copier

    destination = tmp_path / "My-Shop.app"
    copier.run_copy(
        str(REPO),
        str(destination),
        defaults=True,
        unsafe=True,
        vcs_ref="HEAD",
        quiet=True,
    )
    assert 'name = "my_shop_app"' in (destination / "lhd.toml").read_text()


def test_copy_into_lucky_project(tmp_path):
    root = copy_fixture_app(tmp_path / "fixture_app")
    lucky_tasks = sorted(p.relative_to(root) for p in (root / "tasks").rglob("*"))
    generate(root)
    assert not (root / "docker-compose.yml").exists()
    assert not (root / "docker").exists()
    assert (root / "Docker" / "compose.yml").exists()
    assert (root / "tasks.cr").exists()
    assert (
        sorted(p.relative_to(root) for p in (root / "tasks").rglob("*")) == lucky_tasks
    )
    watch = (root / "config" / "watch.yml").read_text()
    assert watch == "host: 0.0.0.0\nport: 5000\nreload_port: 3001\n"
    gitignore = (root / ".gitignore").read_text()
    assert gitignore.startswith("/docs/\n/lib/\n")
    assert ".env.production\n" in gitignore
    readme = (root / "README.md").read_text()
    assert "LHD" not in readme.splitlines()[0]
    assert (
        (root / "LHD.md")
        .read_text()
        .startswith("# fixture_app: Lucky, Hasura and Postgres")
    )
    assert "Lucky" in (root / "src" / "start_server.cr").read_text()
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "inv"), "--list"],
        cwd=root / "tasks",
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^\s+up\s", listed.stdout, re.MULTILINE)
