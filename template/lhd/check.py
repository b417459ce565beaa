"""`inv check`: verify that a project is set up the LHD way, for example
after moving it off the bash-and-sed LHD boilerplate."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lhd import compose, devenv, engine, envfile
from lhd.errors import LhdError
from lhd.settings import Settings

# Files of the bash-and-sed boilerplate that the template's files replace.
BOILERPLATE_LEFTOVERS = (
    "script/up",
    "script/down",
    "script/test",
    "script/functions",
    "script/docker",
    "up.yml",
    "up.cache",
    "docker-sync.yml",
    "Docker/docker-compose.yml",
    "Docker/docker-compose.dev.yml",
    "Docker/docker-compose.prod.yml",
    "Docker/docker-compose.swarm.yml",
    "Docker/prometheus-swarm",
    "Docker/lucky/migrations.env",
)
# The boilerplate's sed placeholders; a file that still has one was missed.
PLACEHOLDERS = (
    "GITLAB_USER",
    "GITLAB_REPO_NAME",
    "SWARM_NAME",
    "DEV_SECRET_KEY_BASE_HERE",
)
SCANNED = ("Docker", "db/hasura", "config", "src", ".gitlab-ci.yml")


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str


def run_checks(settings: Settings) -> list[Finding]:
    checks: list[tuple[str, Callable[[Settings], str]]] = [
        ("development .env", check_env),
        ("no update conflicts left", check_conflicts),
        ("boilerplate files removed", check_leftovers),
        ("sed placeholders replaced", check_placeholders),
        ("Compose files valid", check_compose),
    ]
    findings = []
    for name, check in checks:
        try:
            findings.append(Finding(name, True, check(settings)))
        except LhdError as error:
            findings.append(Finding(name, False, str(error)))
    return findings


def check_env(settings: Settings) -> str:
    values = devenv.sync(settings)
    envfile.ensure_private(settings.env_file)
    key_length = len(values["DEV_SECRET_KEY_BASE"])
    return f"{len(values)} settings, JWT key of {key_length} characters"


# Folders of installed shards, build output and local state: not the user's.
SKIPPED_FOLDERS = {".git", "lib", "bin", ".shards", "node_modules", ".lhd", "tmp"}
CONFLICT_MARKERS = ("<<<<<<< ", ">>>>>>> ")


def project_files(settings: Settings) -> Iterator:
    for path in settings.root.rglob("*"):
        relative = path.relative_to(settings.root)
        if relative.parts[0] in SKIPPED_FOLDERS or not path.is_file():
            continue
        yield path


def check_conflicts(settings: Settings) -> str:
    """Find what `copier update` leaves for the user to resolve."""
    found = []
    for path in project_files(settings):
        name = str(path.relative_to(settings.root))
        if path.suffix == ".rej":
            found.append(name)
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, OSError):
            continue
        if any(line.startswith(CONFLICT_MARKERS) for line in lines):
            found.append(name)
    if found:
        raise LhdError(
            "Resolve the conflicts `copier update` left in "
            f"{', '.join(sorted(found))}, then delete any .rej file."
        )
    return "none found"


def check_leftovers(settings: Settings) -> str:
    found = [name for name in BOILERPLATE_LEFTOVERS if (settings.root / name).exists()]
    if found:
        raise LhdError(
            f"Delete these files of the bash boilerplate: {', '.join(found)}"
        )
    return "none left"


def scanned_files(settings: Settings) -> Iterator:
    for name in SCANNED:
        path = settings.root / name
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from (child for child in path.rglob("*") if child.is_file())


def check_placeholders(settings: Settings) -> str:
    hits = []
    for path in scanned_files(settings):
        text = path.read_text(encoding="utf-8", errors="replace")
        hits += [
            f"{path.relative_to(settings.root)}: {word}"
            for word in PLACEHOLDERS
            if word in text
        ]
    if hits:
        raise LhdError("Replace these placeholders: " + "; ".join(hits))
    return "none found"


def check_compose(settings: Settings) -> str:
    command = engine.compose_command()
    for files in (compose.DEV_FILES, compose.TEST_FILES):
        stack = compose.Compose(
            command=command,
            project=settings.project_name,
            files=compose.project_files(settings.compose_dir, files),
            env_file=settings.env_file,
        )
        result = subprocess.run(
            [*stack.config(), "--quiet"], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise LhdError(f"{' + '.join(files)}: {result.stderr.strip()}")
    return "development and test files pass `docker compose config`"


def show(findings: list[Finding]) -> None:
    from rich.table import Table

    from lhd import ui

    table = Table(title="LHD project check")
    for column in ("check", "result", "detail"):
        table.add_column(column)
    for finding in findings:
        result = "[green]ok[/]" if finding.ok else "[red]failed[/]"
        table.add_row(finding.check, result, finding.detail)
    ui.console().print(table)
