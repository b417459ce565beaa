"""The CI tasks: command lines, branch tags, skip words and the deploy setup.

The tasks run against a recording Invoke context, so no command runs.
"""

from __future__ import annotations

import stat

import pytest
from invoke import Context, Exit
from invoke.runners import Result

from lhd import ci, citasks
from lhd.errors import LhdError

IMAGE = "r.invalid/demo/lucky"
SHA = "abcd1234ef567890abcd1234ef567890abcd1234"
HOST_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII77HVyJcA2Oa+QrN/x44FogI6zdaaihJL1YkfqGUJnh"
)
PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\r\nnot-a-real-key\r\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
AGENT_OUTPUT = (
    "SSH_AUTH_SOCK=/tmp/ssh-x/agent.7; export SSH_AUTH_SOCK;\n"
    "SSH_AGENT_PID=8; export SSH_AGENT_PID;\necho Agent pid 8;\n"
)
CI_VARIABLES = (
    "CI_COMMIT_SHA", "GITHUB_SHA", "CI_COMMIT_BRANCH", "GITHUB_HEAD_REF",
    "GITHUB_REF_NAME", "CI_COMMIT_MESSAGE", "COMMIT_MESSAGE", "GITHUB_OUTPUT",
    "REGISTRY_USER", "CI_REGISTRY_USER", "GITHUB_ACTOR", "REGISTRY_PASSWORD",
    "CI_REGISTRY_PASSWORD", "DEPLOY_SERVER", "DEPLOY_USER", "DEPLOY_SSH_KEY",
    "DEPLOY_KNOWN_HOSTS", "SSH_AUTH_SOCK", "SSH_AGENT_PID",
)  # fmt: skip


class RecordingContext(Context):
    """An Invoke context that records each command and its standard input.

    Commands that start with one of `failing` exit 1; the others exit 0.
    """

    def __init__(self, failing: tuple[str, ...] = ()):
        super().__init__()
        # Context turns unknown attributes into config keys; _set skips that.
        self._set(commands=[], inputs={}, failing=failing)

    def run(self, command, **kwargs):
        self.commands.append(command)
        stream = kwargs.get("in_stream")
        if stream:
            self.inputs[command] = stream.read()
        stdout = AGENT_OUTPUT if command == "ssh-agent -s" else ""
        exited = 1 if command.startswith(self.failing) else 0
        return Result(stdout=stdout, stderr="", exited=exited, command=command)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with lhd.toml as the working directory, CI variables cleared."""
    (tmp_path / "lhd.toml").write_text(
        f'[project]\nname = "demo"\nregistry_image = "{IMAGE}"\n'
    )
    monkeypatch.chdir(tmp_path)
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CI_COMMIT_SHA", SHA)
    monkeypatch.setenv("CI_COMMIT_BRANCH", "feature/login")
    monkeypatch.setenv("CI_COMMIT_MESSAGE", "Add the login form")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


# --- Skip words --------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("no-test", True),
        ("Fix typo [no-test]", True),
        ("Fix typo\n\nno-test", True),
        ("no-test: docs only", True),
        ("no-tests", False),
        ("sub-no-test", False),
        ("no_test", False),
        ("No-Test", False),
        ("ano-test", False),
    ],
)
def test_has_word_needs_whole_word(message, expected):
    assert ci.has_word(message, "no-test") is expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Add the login form", ("build", "tag", "test", "deploy")),
        ("Docs no-test", ("build", "tag", "deploy")),
        ("no-build no-tag", ("test", "deploy")),
        ("Config change no-deploy", ("build", "tag", "test")),
        ("Hotfix deploy-only", ("deploy",)),
        ("build-only", ("build",)),
        ("tag-only", ("tag",)),
        ("test-only", ("test",)),
        ("build-only test-only", ("build", "test")),
        ("test-only no-test", ()),
        ("deploy-only sub-deploy", ("deploy",)),
        ("no-tests build-onlyish", ("build", "tag", "test", "deploy")),
    ],
)
def test_stages_to_run(message, expected):
    assert ci.stages_to_run(message) == expected


def test_subtractive_word():
    assert ci.is_subtractive("Drop a column sub-deploy")
    assert not ci.is_subtractive("Drop a column")
    assert not ci.is_subtractive("sub-deploys")


def test_word_pattern_rejects_odd_words():
    with pytest.raises(ValueError):
        ci.word_pattern("no.test")


@pytest.mark.parametrize(
    ("branch", "environment"),
    [("staging", "staging"), ("main", "production"), ("master", "production"),
     ("feature/staging", None), ("Main", None), ("develop", None)],
)  # fmt: skip
def test_deploy_environment(branch, environment):
    assert ci.deploy_environment(branch) == environment


def test_plan_outputs_for_main():
    outputs = ci.plan_outputs("Fix login no-test sub-deploy", "main", SHA)
    assert outputs == {
        "build": "true", "tag": "true", "test": "false", "deploy": "true",
        "environment": "production", "subtractive": "true",
        "image_tag": "abcd1234", "branch_tag": "main",
    }  # fmt: skip


def test_plan_outputs_never_deploy_feature_branch():
    outputs = ci.plan_outputs("deploy-only", "feature/x", SHA)
    assert outputs["deploy"] == "false"
    assert outputs["build"] == "false"
    assert outputs["environment"] == ""


# --- Branch tags ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("branch", "tag"),
    [
        ("main", "main"),
        ("feature/login", "feature-login"),
        ("Fix_Bug.2", "Fix_Bug.2"),
        ("feature//a b", "feature-a-b"),
        ("-leading", "leading"),
        (".hidden", "hidden"),
        ("dépôt", "d-p-t"),
        ("x" * 200, "x" * 128),
    ],
)
def test_branch_tag(branch, tag):
    assert ci.branch_tag(branch) == tag


def test_branch_tag_rejects_empty_result():
    with pytest.raises(LhdError, match="--branch"):
        ci.branch_tag("/.-")


# --- Command lines -----------------------------------------------------------


def test_push_and_pull_argv():
    assert ci.push_argv(f"{IMAGE}:abcd1234") == ["docker", "push", f"{IMAGE}:abcd1234"]
    assert ci.pull_argv(f"{IMAGE}:main") == ["docker", "pull", f"{IMAGE}:main"]


def test_retag_argvs_pull_tag_push():
    assert ci.retag_argvs(IMAGE, "abcd1234", "feature-login") == [
        ["docker", "pull", f"{IMAGE}:abcd1234"],
        ["docker", "tag", f"{IMAGE}:abcd1234", f"{IMAGE}:feature-login"],
        ["docker", "push", f"{IMAGE}:feature-login"],
    ]


def test_fab_deploy_argv():
    assert ci.fab_deploy_argv("deploy", "app.example.org", SHA, False) == [
        "fab", "-H", "deploy@app.example.org", "deploy", SHA,
    ]  # fmt: skip
    assert ci.fab_deploy_argv("deploy", "app.example.org:2222", SHA, True)[-3:] == [
        "deploy", SHA, "--subtractive",
    ]  # fmt: skip


# --- Tasks -------------------------------------------------------------------


def test_push_task_defaults_to_commit_tag(project):
    context = RecordingContext()
    citasks.push(context)
    assert context.commands == [f"docker push {IMAGE}:abcd1234"]


def test_retag_task_sanitises_branch(project):
    context = RecordingContext()
    citasks.retag(context, tag="abcd1234")
    assert context.commands == [
        f"docker pull {IMAGE}:abcd1234",
        f"docker tag {IMAGE}:abcd1234 {IMAGE}:feature-login",
        f"docker push {IMAGE}:feature-login",
    ]


def test_pull_cache_ignores_missing_image(project):
    context = RecordingContext(failing=("docker pull",))
    citasks.pull_cache(context, branch="main")
    assert context.commands == [f"docker pull {IMAGE}:main"]


def test_branch_image_prints_reference(project, capsys):
    citasks.branch_image(RecordingContext())
    assert capsys.readouterr().out == f"{IMAGE}:feature-login\n"


def test_login_passes_password_on_stdin(project, monkeypatch):
    monkeypatch.setenv("CI_REGISTRY_USER", "gitlab-ci-token")
    monkeypatch.setenv("CI_REGISTRY_PASSWORD", "s3cret-token")
    context = RecordingContext()
    citasks.login(context)
    command = "docker login --username gitlab-ci-token --password-stdin r.invalid"
    assert context.commands == [command]
    assert context.inputs[command] == "s3cret-token\n"
    assert "s3cret-token" not in " ".join(context.commands)


def test_login_prefers_registry_password(project, monkeypatch):
    monkeypatch.setenv("REGISTRY_USER", "robot")
    monkeypatch.setenv("REGISTRY_PASSWORD", "other-token")
    monkeypatch.setenv("CI_REGISTRY_PASSWORD", "s3cret-token")
    context = RecordingContext()
    citasks.login(context, registry="registry.example.org")
    command = "docker login --username robot --password-stdin registry.example.org"
    assert context.inputs[command] == "other-token\n"


def test_login_without_password_fails(project, monkeypatch, capsys):
    monkeypatch.setenv("CI_REGISTRY_USER", "gitlab-ci-token")
    context = RecordingContext()
    with pytest.raises(Exit):
        citasks.login(context)
    assert context.commands == []
    assert "CI_REGISTRY_PASSWORD is missing or empty" in capsys.readouterr().err


def test_ci_plan_writes_github_output(project, monkeypatch):
    output = project / "github-output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    citasks.ci_plan(RecordingContext(), message="Docs test-only", branch="main")
    lines = output.read_text().splitlines()
    assert "test=true" in lines
    assert "build=false" in lines
    assert "deploy=false" in lines
    assert "image_tag=abcd1234" in lines


# --- Deploy ------------------------------------------------------------------


def test_ssh_server_parse():
    assert ci.SshServer.parse("app.example.org") == ci.SshServer("app.example.org", 22)
    server = ci.SshServer.parse("app.example.org:2222")
    assert server.known_hosts_name == "[app.example.org]:2222"
    assert server.fabric_host == "app.example.org:2222"
    assert ci.SshServer.parse("[2001:db8::1]").host == "2001:db8::1"


@pytest.mark.parametrize(
    "address", ["", "user@host", "host:99999", "host:x", "[2001:db8::1]:2222"]
)
def test_ssh_server_parse_rejects(address):
    with pytest.raises(LhdError):
        ci.SshServer.parse(address)


def test_known_host_lines_match_server():
    lines = f"# keys\nother.example.org {HOST_KEY}\napp.example.org {HOST_KEY}\n"
    server = ci.SshServer("app.example.org")
    assert ci.known_host_lines(lines, server) == [f"app.example.org {HOST_KEY}"]


def test_known_host_lines_match_port_and_hash():
    from paramiko.hostkeys import HostKeys

    hashed = HostKeys.hash_host("[app.example.org]:2222")
    server = ci.SshServer("app.example.org", 2222)
    assert ci.known_host_lines(f"{hashed} {HOST_KEY}", server) == [
        f"{hashed} {HOST_KEY}"
    ]
    with pytest.raises(LhdError, match=r"\[app.example.org\]:2222"):
        ci.known_host_lines(f"app.example.org {HOST_KEY}", server)


def test_known_host_lines_skip_malformed_keys():
    with pytest.raises(LhdError, match="ssh-keyscan"):
        ci.known_host_lines(
            "app.example.org ssh-ed25519 not-base64!", ci.SshServer("app.example.org")
        )


def test_private_key_text_normalises(tmp_path):
    text = ci.private_key_text(PRIVATE_KEY)
    assert "\r" not in text
    assert text.endswith("-----END OPENSSH PRIVATE KEY-----\n")
    key_file = tmp_path / "key"
    key_file.write_text(PRIVATE_KEY)
    assert ci.private_key_text(str(key_file)) == text
    with pytest.raises(LhdError, match="no private key"):
        ci.private_key_text("ssh-ed25519 AAAA")


@pytest.fixture
def deploy_variables(project, monkeypatch):
    monkeypatch.setenv("DEPLOY_SERVER", "app.example.org")
    monkeypatch.setenv("DEPLOY_USER", "deploy")
    monkeypatch.setenv("DEPLOY_SSH_KEY", PRIVATE_KEY)
    monkeypatch.setenv("DEPLOY_KNOWN_HOSTS", f"app.example.org {HOST_KEY}\n")
    return project


def test_ci_deploy_runs_agent_and_fab(deploy_variables):
    context = RecordingContext()
    citasks.ci_deploy(context)
    assert context.commands == [
        "ssh-agent -s",
        "ssh-add -",
        f"fab -H deploy@app.example.org deploy {SHA}",
        "ssh-agent -k",
    ]
    assert context.inputs["ssh-add -"] == ci.private_key_text(PRIVATE_KEY)
    assert "PRIVATE KEY" not in " ".join(context.commands)


def test_ci_deploy_writes_known_hosts(deploy_variables):
    citasks.ci_deploy(RecordingContext())
    known_hosts = deploy_variables / "home" / ".ssh" / "known_hosts"
    assert known_hosts.read_text() == f"app.example.org {HOST_KEY}\n"
    assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o600
    citasks.ci_deploy(RecordingContext())
    assert known_hosts.read_text().count(HOST_KEY) == 1


def test_ci_deploy_subtractive_from_message(deploy_variables, monkeypatch):
    monkeypatch.setenv("CI_COMMIT_MESSAGE", "Drop users.age\n\nsub-deploy")
    context = RecordingContext()
    citasks.ci_deploy(context)
    assert (
        f"fab -H deploy@app.example.org deploy {SHA} --subtractive" in context.commands
    )


def test_ci_deploy_unknown_host_stops_first(deploy_variables, monkeypatch):
    monkeypatch.setenv("DEPLOY_KNOWN_HOSTS", f"other.example.org {HOST_KEY}")
    context = RecordingContext()
    with pytest.raises(Exit):
        citasks.ci_deploy(context)
    assert context.commands == []


def test_ci_deploy_stops_agent_after_failure(deploy_variables):
    context = RecordingContext(failing=("fab ",))
    with pytest.raises(Exit):
        citasks.ci_deploy(context)
    assert context.commands[-1] == "ssh-agent -k"


def test_ci_deploy_missing_server(deploy_variables, monkeypatch, capsys):
    monkeypatch.delenv("DEPLOY_SERVER")
    with pytest.raises(Exit):
        citasks.ci_deploy(RecordingContext())
    assert "DEPLOY_SERVER is missing or empty" in capsys.readouterr().err
