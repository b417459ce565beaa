"""`copier update` between template versions built here as git tags."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import copier
import pytest

from conftest import REPO, copy_fixture_app, git

LUCKY_COMPOSE = (
    "services:\n  lucky:\n    build:\n      dockerfile: docker/development.dockerfile\n"
)


def working_tree_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return [
        name for name in listed.stdout.split("\0") if name and (REPO / name).is_file()
    ]


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def template_versions(tmp_path_factory) -> Path:
    """A copy of this template with tags v0.1.0, v0.2.0 and v0.3.0."""
    repo = tmp_path_factory.mktemp("template") / "lhd"
    for name in working_tree_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, repo / name)
    git(repo, "init", "--quiet", "--initial-branch", "main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message", "First version")
    git(repo, "tag", "v0.1.0")

    template = repo / "template"
    # v0.2.0 renames a file, renames a setting (with a migration for the
    # user's .env), changes a default and changes lines users also edit.
    git(
        repo,
        "mv",
        "template/Docker/compose.image.yml",
        "template/Docker/compose.release-image.yml",
    )
    replace_in(
        template / "lhd" / "compose.py",
        '"compose.image.yml"',
        '"compose.release-image.yml"',
    )
    replace_in(template / ".env.example", "LUCKY_PORT=", "APP_PORT=")
    replace_in(
        template / "Docker" / "compose.dev.yml",
        "${LUCKY_PORT:-5000}",
        "${APP_PORT:-5000}",
    )
    replace_in(template / "lhd" / "ports.py", '"LUCKY_PORT": 5000', '"APP_PORT": 5000')
    replace_in(
        template / "lhd" / "devtasks.py", "env.get('LUCKY_PORT'", "env.get('APP_PORT'"
    )
    replace_in(template / "LHD.md.jinja", "## First commands", "## Getting started")
    replace_in(repo / "copier.yml", "  default: gitlab\n", "  default: github\n")
    replace_in(
        repo / "copier.yml",
        "# ---------------------------------------------------------------------------\n# Project\n",
        "_migrations:\n"
        "  - version: v0.2.0\n"
        '    command: ["{{ _copier_python }}", "-m", "lhd.upgrade", "move-env",'
        ' "LUCKY_PORT", ".env", ".env", "--rename", "APP_PORT"]\n'
        "    when: \"{{ _stage == 'after' }}\"\n\n"
        "# ---------------------------------------------------------------------------\n# Project\n",
    )
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message", "Rename LUCKY_PORT to APP_PORT")
    git(repo, "tag", "v0.2.0")

    replace_in(
        template / "Docker" / "compose.test.yml",
        "# Tests: `inv test` runs",
        "# Tests: the `inv test` task runs",
    )
    git(repo, "commit", "--quiet", "--all", "--message", "Reword a comment")
    git(repo, "tag", "v0.3.0")
    return repo


@pytest.fixture(scope="module")
def updated(template_versions, tmp_path_factory):
    """A project made from v0.1.0, edited by its user, then updated to v0.2.0."""
    root = copy_fixture_app(tmp_path_factory.mktemp("project") / "fixture_app")
    copier.run_copy(
        str(template_versions), str(root), data={"project_name": "fixture_app"},
        defaults=True, overwrite=True, unsafe=True, vcs_ref="v0.1.0", quiet=True,
    )  # fmt: skip
    from lhd import devenv, envfile, settings

    devenv.sync(settings.load(root))
    envfile.update(root / ".env", {"LUCKY_PORT": "5151"})
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "Add LHD v0.1.0")

    # The user's own edits, one beside a template change and one on it.
    replace_in(
        root / "Docker" / "compose.dev.yml",
        "      LUCKY_ENV: development\n",
        "      LUCKY_ENV: development\n      FEATURE_FLAGS: beta\n",
    )
    replace_in(root / "LHD.md", "## First commands", "## Our first commands")
    # Lucky's compose file back, to see that the post-copy task stays idle.
    (root / "docker-compose.yml").write_text(LUCKY_COMPOSE)
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "Local changes")

    copier.run_update(
        str(root), vcs_ref="v0.2.0", defaults=True, overwrite=True, unsafe=True,
        conflict="inline", quiet=True,
    )  # fmt: skip
    return root


def test_answers_record_new_version(updated):
    assert "_commit: v0.2.0" in (updated / ".copier-answers.yml").read_text()


def test_renamed_file_follows(updated):
    assert (updated / "Docker" / "compose.release-image.yml").exists()
    assert not (updated / "Docker" / "compose.image.yml").exists()


def test_user_edit_kept_beside_template_change(updated):
    compose = (updated / "Docker" / "compose.dev.yml").read_text()
    assert "FEATURE_FLAGS: beta" in compose
    assert "${APP_PORT:-5000}" in compose
    assert "LUCKY_PORT" not in compose


def test_conflict_reported_inline(updated):
    readme = (updated / "LHD.md").read_text()
    assert "<<<<<<<" in readme
    assert "## Our first commands" in readme
    assert "## Getting started" in readme


def test_recorded_answer_beats_new_default(updated):
    assert "ci_provider: gitlab" in (updated / ".copier-answers.yml").read_text()
    assert (updated / ".gitlab-ci.yml").exists()
    assert not (updated / ".github").exists()


def test_migration_moves_user_setting(updated):
    env = (updated / ".env").read_text()
    assert "APP_PORT='5151'" in env
    assert "LUCKY_PORT" not in env
    log = (updated / ".lhd" / "upgrade.log").read_text().splitlines()
    assert len(log) == 1
    assert log[0].endswith("renamed LUCKY_PORT to APP_PORT in .env")


def test_post_copy_task_skipped_on_update(updated):
    assert (updated / "docker-compose.yml").read_text() == LUCKY_COMPOSE


def test_migration_not_rerun_past_its_version(updated):
    readme = (updated / "LHD.md").read_text()
    resolved = "\n".join(
        line for line in readme.splitlines()
        if not line.startswith(("<<<<<<<", "=======", ">>>>>>>")) and line != "## Our first commands"
    )  # fmt: skip
    (updated / "LHD.md").write_text(resolved + "\n")
    git(updated, "add", "--all")
    git(updated, "commit", "--quiet", "--message", "Resolve the update conflict")
    copier.run_update(
        str(updated), vcs_ref="v0.3.0", defaults=True, overwrite=True, unsafe=True,
        conflict="inline", quiet=True,
    )  # fmt: skip
    assert "_commit: v0.3.0" in (updated / ".copier-answers.yml").read_text()
    assert (
        "# Tests: the `inv test` task runs"
        in (updated / "Docker" / "compose.test.yml").read_text()
    )
    assert len((updated / ".lhd" / "upgrade.log").read_text().splitlines()) == 1
