"""Invoke tasks that the CI pipelines run besides `inv build` and `inv test`:
registry login, pull and push, branch tags, the job plan of a commit
message and the deploy from CI. Their decisions live in `lhd.ci`.

`.gitlab-ci.yml` and `.github/workflows/ci.yml` call them; each also runs
on a workstation, where the commit, branch and message come from git.
"""

from __future__ import annotations

import io
import os
import shlex
from pathlib import Path

from invoke import task

from lhd.errors import LhdError
from lhd.taskutil import context_objects, reported

TAG_HELP = "Image tag (default: the first 8 characters of the commit SHA)."
BRANCH_HELP = (
    "Branch whose tag to use (default: the CI branch variable, else the "
    "current git branch). It is turned into a valid tag: feature/x -> feature-x."
)


def run_with_input(c, argv: list[str], text: str, what: str) -> None:
    """Run `argv` with `text` on its standard input, never in its argv or the log."""
    result = c.run(shlex.join(argv), in_stream=io.StringIO(text), warn=True, pty=False)
    if not result.ok:
        raise LhdError(
            f"{what} failed with exit code {result.exited}\n"
            f"  command: {shlex.join(argv)}"
        )


@task(
    help={
        "registry": "Registry host to log in to "
        "(default: the host of registry_image in lhd.toml).",
        "username": "Registry user name (default: $REGISTRY_USER, else "
        "$CI_REGISTRY_USER, else $GITHUB_ACTOR).",
        "password_variable": "Name of the environment variable that holds the "
        "password or token (default: REGISTRY_PASSWORD when set, else "
        "CI_REGISTRY_PASSWORD). The value goes to `docker login` on standard "
        "input, never on its command line.",
    }
)
@reported
def login(c, registry=None, username=None, password_variable=None):
    """Log Docker in to the project's registry with a password from the environment.

    Example: inv login --password-variable CI_JOB_TOKEN --username gitlab-ci-token
    """
    from lhd import ci, ui
    from lhd import registry as registry_module

    _, settings = context_objects(c)
    registry = registry or registry_module.registry_host(settings.registry_image)
    username = username or ci.environment_value(
        "REGISTRY_USER", "CI_REGISTRY_USER", "GITHUB_ACTOR"
    )
    if not username:
        raise LhdError("No registry user name: pass --username or set REGISTRY_USER.")
    if password_variable is None:
        password_variable = (
            "REGISTRY_PASSWORD"
            if os.environ.get("REGISTRY_PASSWORD")
            else "CI_REGISTRY_PASSWORD"
        )
    password = os.environ.get(password_variable)
    if not password:
        raise LhdError(
            f"The environment variable {password_variable} is missing or empty: "
            "set it to the registry password or token in the CI settings, or "
            "name another variable with --password-variable."
        )
    ui.step(f"Logging in to {registry} as {username}")
    run_with_input(
        c,
        registry_module.login_argv(registry, username),
        password + "\n",
        f"Logging in to {registry}",
    )


@task(help={"tag": TAG_HELP})
@reported
def pull(c, tag=None):
    """Pull the project's image `<registry_image>:<tag>`.

    Example: inv pull --tag abcd1234
    """
    from lhd import ci

    runner, settings = context_objects(c)
    reference = f"{settings.registry_image}:{tag or ci.commit_tag(settings.root)}"
    runner.run(ci.pull_argv(reference), what=f"Pulling {reference}")


@task(help={"tag": TAG_HELP})
@reported
def push(c, tag=None):
    """Push the project's image `<registry_image>:<tag>`, built by `inv build`.

    Example: inv push --tag abcd1234
    """
    from lhd import ci, ui

    runner, settings = context_objects(c)
    reference = f"{settings.registry_image}:{tag or ci.commit_tag(settings.root)}"
    runner.run(ci.push_argv(reference), what=f"Pushing {reference}")
    ui.done(f"Pushed {reference}")


@task(help={"tag": TAG_HELP, "branch": BRANCH_HELP})
@reported
def retag(c, tag=None, branch=None):
    """Tag the commit's image with the branch name and push that tag.

    Pulls `<registry_image>:<tag>`, tags it `<registry_image>:<branch>` and
    pushes it; the next build of the branch uses it as its cache.

    Example: inv retag --tag abcd1234 --branch feature/login
    """
    from lhd import ci, ui

    runner, settings = context_objects(c)
    tag = tag or ci.commit_tag(settings.root)
    target = ci.branch_tag(branch or ci.branch_name(settings.root))
    for argv in ci.retag_argvs(settings.registry_image, tag, target):
        runner.run(argv, what=f"Tagging {tag} as {target}")
    ui.done(f"Pushed {settings.registry_image}:{target}")


@task(help={"branch": BRANCH_HELP})
@reported
def branch_image(c, branch=None):
    """Print the image reference of a branch, the build cache of its next build.

    Example: inv build --cache-from "$(inv branch-image)"
    """
    from lhd import ci

    _, settings = context_objects(c)
    tag = ci.branch_tag(branch or ci.branch_name(settings.root))
    print(f"{settings.registry_image}:{tag}")


@task(help={"branch": BRANCH_HELP})
@reported
def pull_cache(c, branch=None):
    """Pull the branch's image for use as a build cache; a missing one is no error.

    The first build of a branch has no image to pull, and any pull failure
    only costs a slower build, so a failure is reported and ignored.

    Example: inv pull-cache --branch main
    """
    from lhd import ci, ui

    runner, settings = context_objects(c)
    tag = ci.branch_tag(branch or ci.branch_name(settings.root))
    reference = f"{settings.registry_image}:{tag}"
    ui.step(f"Pulling {reference} as the build cache")
    result = runner.run(ci.pull_argv(reference), check=False)
    if result.ok:
        ui.done(f"Pulled {reference}")
    else:
        ui.warn(
            f"No cache image {reference} (docker pull exited {result.exited}); "
            "building without it."
        )


@task(
    help={
        "message": "Commit message to read the skip words from "
        "(default: $CI_COMMIT_MESSAGE, else $COMMIT_MESSAGE, else the HEAD commit).",
        "branch": "Branch the pipeline runs for (default: the CI branch "
        "variable, else the current git branch).",
        "output": "File to append the decisions to as name=value lines "
        "(default: $GITHUB_OUTPUT when set, else only print them).",
    }
)
@reported
def ci_plan(c, message=None, branch=None, output=None):
    """Print which pipeline jobs run for a commit message and branch.

    Skip words: no-build, no-tag, no-test, no-deploy, build-only, tag-only,
    test-only, deploy-only; sub-deploy makes the deploy subtractive. Deploys
    run for staging, main and master only. The GitHub workflow reads the
    decisions from $GITHUB_OUTPUT; GitLab evaluates the same words in `rules:`.

    Example: inv ci-plan --message "Fix the README no-test" --branch main
    """
    from lhd import ci

    _, settings = context_objects(c)
    message = message if message is not None else ci.commit_message(settings.root)
    branch = branch or ci.branch_name(settings.root)
    outputs = ci.plan_outputs(message, branch, ci.commit_sha(settings.root))
    lines = [f"{name}={value}" for name, value in outputs.items()]
    print("\n".join(lines))
    output = output or os.environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as stream:
            stream.write("\n".join(lines) + "\n")


@task(
    help={
        "server": "Deploy server as host or host:port (default: $DEPLOY_SERVER).",
        "user": "SSH user on the server (default: $DEPLOY_USER).",
        "version": "Commit to deploy (default: the pipeline's commit SHA).",
        "subtractive": "Deploy subtractively even when the commit message "
        "has no sub-deploy word.",
        "key_variable": "Environment variable with the SSH private key, or the "
        "path of a file with it (default: DEPLOY_SSH_KEY).",
        "known_hosts_variable": "Environment variable with the server's "
        "known_hosts lines, as printed by ssh-keyscan (default: DEPLOY_KNOWN_HOSTS).",
    }
)
@reported
def ci_deploy(
    c,
    server=None,
    user=None,
    version=None,
    subtractive=False,
    key_variable="DEPLOY_SSH_KEY",
    known_hosts_variable="DEPLOY_KNOWN_HOSTS",
):
    """Deploy from CI: load the SSH key, trust the host key, run `fab deploy`.

    The key goes to `ssh-add -` on standard input and the agent is stopped
    afterwards. The server's key lines are added to ~/.ssh/known_hosts
    (mode 0600), and the deploy stops before connecting when none of them
    is for the server. A sub-deploy word in the commit message adds
    --subtractive.

    Example: DEPLOY_SERVER=app.example.org DEPLOY_USER=deploy inv ci-deploy
    """
    from lhd import ci, ui

    runner, settings = context_objects(c)
    address = server or required_variable("DEPLOY_SERVER", "--server")
    user = user or required_variable("DEPLOY_USER", "--user")
    target = ci.SshServer.parse(address)
    version = version or ci.commit_sha(settings.root)
    subtractive = subtractive or ci.is_subtractive(ci.commit_message(settings.root))

    key = ci.private_key_text(required_variable(key_variable, "--key-variable"))
    known_hosts = required_variable(known_hosts_variable, "--known-hosts-variable")
    # NOTE: Fabric 3.2 reads no known_hosts file and accepts unknown host
    # keys (paramiko AutoAddPolicy), so these lines protect the deploy only
    # when the fabfile's connection loads them and rejects unknown hosts.
    trust_host_keys(ci.known_host_lines(known_hosts, target))

    ui.step("Starting an SSH agent")
    agent = ci.parse_agent_output(runner.output(["ssh-agent", "-s"], what="ssh-agent"))
    os.environ.update(agent)
    try:
        run_with_input(c, ["ssh-add", "-"], key, "Loading the SSH key (ssh-add)")
        argv = ci.fab_deploy_argv(user, target.fabric_host, version, subtractive)
        ui.step(
            f"Deploying {version[:8]} to {user}@{target.fabric_host}"
            + (" (subtractive)" if subtractive else "")
        )
        runner.run(argv, what="The deploy")
    finally:
        runner.run(["ssh-agent", "-k"], check=False, hide=True)
        for name in agent:
            os.environ.pop(name, None)
    ui.done(f"Deployed {version[:8]} to {target.fabric_host}")


def required_variable(name: str, option: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise LhdError(
            f"The environment variable {name} is missing or empty: set it in "
            f"the CI settings of the deploy environment, or pass {option}."
        )
    return value


def trust_host_keys(lines: list[str]) -> None:
    """Append the lines that ~/.ssh/known_hosts lacks, creating it with mode 0600."""
    path = Path.home() / ".ssh" / "known_hosts"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    present = (
        set(path.read_text(encoding="utf-8").splitlines()) if path.exists() else set()
    )
    missing = [line for line in lines if line not in present]
    with os.fdopen(
        os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a"
    ) as stream:
        stream.write("".join(f"{line}\n" for line in missing))


TASKS = (login, pull, push, retag, branch_image, pull_cache, ci_plan, ci_deploy)
