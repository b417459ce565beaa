"""The rendered CI files: schema validity, stages, the jobs each commit
message and branch runs, and no secret on a command line.

The job decisions are checked by evaluating the GitLab `rules:` and the
GitHub `if:` expressions of the rendered files against the decisions of
`lhd.ci`, which the CI tasks use.
"""

from __future__ import annotations

import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from conftest import generate
from lhd import ci

pytest.importorskip("check_jsonschema")

# (commit message, branch): the table every job decision is checked on.
CASES = [
    (message, branch)
    for message in (
        "Add the login form",
        "Docs no-test",
        "Fix typo [no-build]",
        "no-tag",
        "Config change no-deploy",
        "Hotfix\n\ndeploy-only",
        "build-only",
        "tag-only",
        "test-only",
        "build-only test-only",
        "test-only no-test",
        "Drop users.age sub-deploy",
        "no-tests build-onlyish",
        "sub-no-test",
    )
    for branch in ("main", "master", "staging", "feature/login", "staging-2")
]
GITLAB_DEPLOY_JOBS = {"staging": "deploy-staging", "production": "deploy-production"}
SECRET_NAMES = re.compile(r"PASSWORD|TOKEN|SSH_KEY|DEPLOY_KEY|secrets\.", re.IGNORECASE)


def expected_jobs(message: str, branch: str) -> set[str]:
    """Return the jobs that `lhd.ci` lets run, named as in the CI files."""
    stages = set(ci.stages_to_run(message))
    jobs = stages - {"deploy"}
    environment = ci.deploy_environment(branch)
    if "deploy" in stages and environment:
        jobs.add(GITLAB_DEPLOY_JOBS[environment])
    return jobs


@pytest.fixture(scope="module")
def gitlab_file(tmp_path_factory):
    root = generate(tmp_path_factory.mktemp("gitlab") / "x", ci_provider="gitlab")
    return root / ".gitlab-ci.yml"


@pytest.fixture(scope="module")
def github_file(tmp_path_factory):
    root = generate(tmp_path_factory.mktemp("github") / "x", ci_provider="github")
    return root / ".github" / "workflows" / "ci.yml"


@pytest.fixture(scope="module")
def gitlab(gitlab_file):
    return yaml.safe_load(gitlab_file.read_text())


@pytest.fixture(scope="module")
def github(github_file):
    return yaml.safe_load(github_file.read_text())


def check_schema(path, schema):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            schema,
            str(path),
        ],
        capture_output=True,
        text=True,
    )


# --- GitLab ------------------------------------------------------------------


def gitlab_jobs(document: dict) -> dict[str, dict]:
    reserved = {"stages", "workflow", "variables", "default", "include"}
    return {
        name: job
        for name, job in document.items()
        if name not in reserved and not name.startswith(".")
    }


def evaluate_gitlab_if(expression: str, variables: dict[str, str]) -> bool:
    """Evaluate the subset of GitLab `rules:if` syntax the file uses.

    Supported: `$VAR` alone, `$VAR == "x"`, `$VAR != "x"`, `$VAR =~ /re/`,
    joined by `&&` (no `||` or brackets, which the file does not use).
    An unknown form fails the test instead of guessing.
    """
    result = True
    for clause in expression.split("&&"):
        clause = clause.strip()
        if match := re.fullmatch(r"\$(\w+)", clause):
            value = bool(variables.get(match[1]))
        elif match := re.fullmatch(r'\$(\w+) (==|!=) "([^"]*)"', clause):
            equal = variables.get(match[1], "") == match[3]
            value = equal if match[2] == "==" else not equal
        elif match := re.fullmatch(r"\$(\w+) =~ /(.*)/", clause):
            # The patterns avoid RE2/Python differences (no \w, no look-around).
            value = re.search(match[2], variables.get(match[1], "")) is not None
        else:
            pytest.fail(f"Unsupported GitLab rules:if clause: {clause!r}")
        result = result and value
    return result


def gitlab_rule_outcome(rules: list[dict], variables: dict[str, str]) -> str:
    """Return the `when` of the first matching rule, or "never" when none matches."""
    for rule in rules:
        if "if" not in rule or evaluate_gitlab_if(rule["if"], variables):
            return rule.get("when", "on_success")
    return "never"


def gitlab_run_jobs(document: dict, message: str, branch: str) -> set[str]:
    variables = {"CI_COMMIT_MESSAGE": message, "CI_COMMIT_BRANCH": branch}
    if gitlab_rule_outcome(document["workflow"]["rules"], variables) == "never":
        return set()
    return {
        name
        for name, job in gitlab_jobs(document).items()
        if gitlab_rule_outcome(job.get("rules", [{}]), variables) != "never"
    }


def gitlab_script_lines(document: dict) -> list[str]:
    lines = list(document["default"]["before_script"])
    for job in document.values():
        if isinstance(job, dict):
            lines += job.get("before_script", []) + job.get("script", [])
    return lines


def test_gitlab_schema(gitlab_file):
    result = check_schema(gitlab_file, "vendor.gitlab-ci")
    assert result.returncode == 0, result.stdout + result.stderr


def test_gitlab_stages_in_order(gitlab):
    assert gitlab["stages"] == ["build", "tag", "test", "deploy"]
    stages = {
        name: job.get("stage") or gitlab[job["extends"]]["stage"]
        for name, job in gitlab_jobs(gitlab).items()
    }
    assert stages == {
        "build": "build", "tag": "tag", "test": "test",
        "deploy-staging": "deploy", "deploy-production": "deploy",
    }  # fmt: skip


def test_gitlab_deploy_jobs_extend_deploy_stage(gitlab):
    assert gitlab[".deploy"]["stage"] == "deploy"
    assert gitlab[".deploy"]["script"] == ["inv ci-deploy"]
    for name in GITLAB_DEPLOY_JOBS.values():
        assert gitlab[name]["extends"] == ".deploy"


@pytest.mark.parametrize(("message", "branch"), CASES)
def test_gitlab_rules_match_ci_decisions(gitlab, message, branch):
    assert gitlab_run_jobs(gitlab, message, branch) == expected_jobs(message, branch)


def test_gitlab_no_test_skips_only_test(gitlab):
    assert gitlab_run_jobs(gitlab, "Docs no-test", "main") == {
        "build", "tag", "deploy-production",
    }  # fmt: skip


def test_gitlab_deploy_only_runs_deploy(gitlab):
    assert gitlab_run_jobs(gitlab, "deploy-only", "staging") == {"deploy-staging"}
    assert gitlab_run_jobs(gitlab, "deploy-only", "feature/login") == set()


def test_gitlab_deploys_only_deploy_branches(gitlab):
    for branch in ("feature/login", "staging-2", "mainline", "Main"):
        jobs = gitlab_run_jobs(gitlab, "Add the login form", branch)
        assert not jobs & set(GITLAB_DEPLOY_JOBS.values()), branch
    assert "deploy-staging" in gitlab_run_jobs(gitlab, "x", "staging")
    assert "deploy-production" in gitlab_run_jobs(gitlab, "x", "main")
    assert "deploy-production" in gitlab_run_jobs(gitlab, "x", "master")


def test_gitlab_skips_merge_request_and_tag_pipelines(gitlab):
    variables = {"CI_COMMIT_MESSAGE": "x"}
    assert gitlab_rule_outcome(gitlab["workflow"]["rules"], variables) == "never"


def test_gitlab_deploy_variables_per_environment(gitlab):
    for environment, name in GITLAB_DEPLOY_JOBS.items():
        job = gitlab[name]
        prefix = environment.upper()
        assert job["environment"]["name"] == environment
        assert job["variables"] == {
            "DEPLOY_SERVER": f"${prefix}_SERVER",
            "DEPLOY_USER": f"${prefix}_SSH_USER",
            "DEPLOY_SSH_KEY": f"${prefix}_SSH_KEY",
            "DEPLOY_KNOWN_HOSTS": f"${prefix}_KNOWN_HOSTS",
        }


def test_gitlab_uses_dind_and_branch_cache(gitlab):
    assert gitlab["default"]["services"] == ["docker:27-dind"]
    build = gitlab["build"]["script"]
    assert 'inv pull-cache --branch "$CI_COMMIT_BRANCH"' in build
    assert any("--cache-from" in line and "inv branch-image" in line for line in build)
    assert 'inv push --tag "$IMAGE_TAG"' in build
    assert gitlab["variables"]["IMAGE_TAG"] == "$CI_COMMIT_SHORT_SHA"
    assert (
        'inv retag --tag "$IMAGE_TAG" --branch "$CI_COMMIT_BRANCH"'
        in gitlab["tag"]["script"]
    )
    assert 'inv test --image "$IMAGE_TAG"' in gitlab["test"]["script"]


def test_gitlab_installs_task_requirements(gitlab):
    assert (
        "pip install --quiet -r lhd/requirements.txt"
        in gitlab["default"]["before_script"]
    )


def test_gitlab_no_secret_on_command_line(gitlab):
    for line in gitlab_script_lines(gitlab):
        assert not SECRET_NAMES.search(line), line
        assert not re.search(r"(^|\s)(-p|--password)(\s|=|$)", line), line
    for name in ("build", "tag", "test"):
        assert gitlab[name]["script"][0] == "inv login"


def test_gitlab_avoids_only_except(gitlab):
    for job in gitlab_jobs(gitlab).values():
        assert "only" not in job
        assert "except" not in job


# --- GitHub ------------------------------------------------------------------


def evaluate_github_if(expression: str, plan: dict[str, str], ref: str) -> bool:
    """Evaluate a GitHub `if:` built from the forms the workflow uses.

    Supported: `needs.plan.outputs.X`, `github.ref`, string literals, `==`,
    `&&`, `||`, `!`, brackets, and the status functions `cancelled()` and
    `failure()`, which are false here (no job fails).
    """
    text = expression.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    allowed = r"(needs\.plan\.outputs\.\w+|github\.ref|'[^']*'|==|&&|\|\||!|\(|\)|cancelled\(\)|failure\(\)|\s+)"
    leftover = re.sub(allowed, "", text)
    if leftover:
        pytest.fail(
            f"Unsupported GitHub expression part {leftover!r} in {expression!r}"
        )
    python = (
        text.replace("&&", " and ").replace("||", " or ").replace("!", " not ")
        .replace("cancelled()", "False")
        .replace("failure()", "False")
    )  # fmt: skip
    names = {
        "needs": SimpleNamespace(plan=SimpleNamespace(outputs=SimpleNamespace(**plan))),
        "github": SimpleNamespace(ref=ref),
    }
    return bool(eval(python, {"__builtins__": {}}, names))  # noqa: S307


def github_run_jobs(document: dict, message: str, branch: str) -> set[str]:
    """Return the jobs that run, with the plan job's outputs from `lhd.ci`."""
    plan = ci.plan_outputs(message, branch, "abcd1234ef567890")
    ref = f"refs/heads/{branch}"
    return {
        name
        for name, job in document["jobs"].items()
        if name != "plan" and evaluate_github_if(job.get("if", "true"), plan, ref)
    }


def github_steps(document: dict):
    for job in document["jobs"].values():
        yield from job["steps"]


def test_github_schema(github_file):
    result = check_schema(github_file, "vendor.github-workflows")
    assert result.returncode == 0, result.stdout + result.stderr


def test_github_keeps_deploy_key_expression(github_file):
    assert "${{ secrets.DEPLOY_KEY }}" in github_file.read_text()


def test_github_jobs_in_stage_order(github):
    jobs = github["jobs"]
    assert list(jobs) == [
        "plan",
        "build",
        "tag",
        "test",
        "deploy-staging",
        "deploy-production",
    ]
    assert jobs["build"]["needs"] == "plan"
    assert jobs["tag"]["needs"] == ["plan", "build"]
    assert jobs["test"]["needs"] == ["plan", "build", "tag"]
    for name in ("deploy-staging", "deploy-production"):
        assert jobs[name]["needs"] == ["plan", "build", "tag", "test"]


def test_github_plan_job_runs_ci_plan(github):
    plan = github["jobs"]["plan"]
    step = next(step for step in plan["steps"] if step.get("id") == "plan")
    assert step["run"] == "inv ci-plan"
    assert step["env"]["COMMIT_MESSAGE"] == "${{ github.event.head_commit.message }}"
    for name in ("build", "tag", "test", "deploy", "image_tag"):
        assert plan["outputs"][name] == f"${{{{ steps.plan.outputs.{name} }}}}"


@pytest.mark.parametrize(("message", "branch"), CASES)
def test_github_conditions_match_ci_decisions(github, message, branch):
    assert github_run_jobs(github, message, branch) == expected_jobs(message, branch)


def test_github_no_test_skips_only_test(github):
    assert github_run_jobs(github, "Docs no-test", "master") == {
        "build", "tag", "deploy-production",
    }  # fmt: skip


def test_github_deploy_only_runs_deploy(github):
    assert github_run_jobs(github, "deploy-only", "staging") == {"deploy-staging"}


def test_github_deploy_conditions_name_branches(github):
    jobs = github["jobs"]
    staging = jobs["deploy-staging"]["if"]
    production = jobs["deploy-production"]["if"]
    assert "github.ref == 'refs/heads/staging'" in staging
    assert "refs/heads/main" not in staging
    assert "github.ref == 'refs/heads/main'" in production
    assert "github.ref == 'refs/heads/master'" in production
    assert "refs/heads/staging" not in production
    # Even a plan that lets deploy run cannot deploy another branch.
    plan = {**ci.plan_outputs("x", "feature/x", "abcd1234"), "deploy": "true"}
    assert not evaluate_github_if(staging, plan, "refs/heads/feature/x")
    assert not evaluate_github_if(production, plan, "refs/heads/feature/x")


def test_github_deploy_jobs_use_environments(github):
    for name, environment in (
        ("deploy-staging", "staging"),
        ("deploy-production", "production"),
    ):
        job = github["jobs"][name]
        assert job["environment"] == environment
        deploy = job["steps"][-1]
        assert deploy["run"] == "inv ci-deploy"
        assert deploy["env"]["DEPLOY_SSH_KEY"] == "${{ secrets.DEPLOY_KEY }}"
        assert (
            deploy["env"]["COMMIT_MESSAGE"] == "${{ github.event.head_commit.message }}"
        )


def test_github_permissions(github):
    assert github["permissions"] == {"contents": "read", "packages": "write"}


def test_github_installs_task_requirements(github):
    for name, job in github["jobs"].items():
        runs = [step.get("run") for step in job["steps"]]
        assert "pip install -r lhd/requirements.txt" in runs, name


def test_github_no_secret_on_command_line(github):
    for step in github_steps(github):
        run = step.get("run", "")
        assert not SECRET_NAMES.search(run), run
        assert "${{" not in run, run
        assert not re.search(r"(^|\s)(-p|--password)(\s|=|$)", run), run


def test_github_registry_password_only_in_login_steps(github):
    for step in github_steps(github):
        env = step.get("env", {})
        if "REGISTRY_PASSWORD" in env:
            assert step["run"] == "inv login"
    for name in ("build", "tag", "test"):
        runs = [step.get("run") for step in github["jobs"][name]["steps"]]
        assert "inv login" in runs, name
