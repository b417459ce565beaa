"""Decisions and command lines of the CI pipelines: which jobs a commit
message skips, branch tags, registry commands and the deploy SSH setup.
The registry login command and host come from `lhd.registry`.

Everything here is a pure function, except the readers of CI variables at
the end; nothing runs a command.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lhd.errors import LhdError

STAGES = ("build", "tag", "test", "deploy")
SUBTRACTIVE_WORD = "sub-deploy"

# Branch -> deploy environment. Every other branch is built, tagged and
# tested but never deployed.
DEPLOY_BRANCHES = {"staging": "staging", "main": "production", "master": "production"}

# A skip word counts only as a whole word: neither side may touch a letter,
# digit, "_" or "-", so `no-tests` or `sub-no-test` skip nothing. The same
# pattern is written into the GitLab `rules:`, whose regular expressions
# are RE2, so it avoids look-around and `\w` (Unicode in Python, ASCII in RE2).
WORD_EDGE = "[^A-Za-z0-9_-]"

# Docker tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
TAG_INVALID_CHARACTER = re.compile(r"[^A-Za-z0-9_.-]+")
TAG_MAX_LENGTH = 128


def word_pattern(word: str) -> str:
    """Return the regular expression that finds `word` as a whole word.

    Example: word_pattern("no-test") == "(^|[^A-Za-z0-9_-])no-test([^A-Za-z0-9_-]|$)"
    """
    if not re.fullmatch(r"[a-z]+(-[a-z]+)*", word):
        raise ValueError(
            f"Invalid skip word {word!r}: use lowercase words joined by -."
        )
    return f"(^|{WORD_EDGE}){word}({WORD_EDGE}|$)"


def has_word(message: str, word: str) -> bool:
    """Return True when the commit message contains `word` as a whole word.

    Example: has_word("Fix typo [no-test]", "no-test") is True
    """
    return re.search(word_pattern(word), message) is not None


def stages_to_run(message: str) -> tuple[str, ...]:
    """Return the stages a commit message lets run, in pipeline order.

    `<stage>-only` words select those stages (all stages when there is
    none), then `no-<stage>` words remove stages from that selection, so
    `no-` wins over `-only`. The deploy stage also depends on the branch;
    see `deploy_environment`.

    Example: stages_to_run("Update docs no-test") == ("build", "tag", "deploy")
    """
    selected = [stage for stage in STAGES if has_word(message, f"{stage}-only")]
    return tuple(
        stage for stage in (selected or STAGES) if not has_word(message, f"no-{stage}")
    )


def is_subtractive(message: str) -> bool:
    """Return True when the commit message requests a subtractive deploy.

    Example: is_subtractive("Drop the users.age column sub-deploy") is True
    """
    return has_word(message, SUBTRACTIVE_WORD)


def deploy_environment(branch: str) -> str | None:
    """Return the environment a branch deploys to, or None when it never deploys.

    Example: deploy_environment("master") == "production"
    """
    return DEPLOY_BRANCHES.get(branch)


def branch_tag(branch: str) -> str:
    """Turn a branch name into a valid Docker tag.

    Runs of characters that tags do not allow become "-", leading "." and
    "-" are dropped (a tag must start with a letter, digit or "_") and the
    result is cut to 128 characters.

    Example: branch_tag("feature/login form") == "feature-login-form"
    """
    tag = TAG_INVALID_CHARACTER.sub("-", branch).lstrip(".-")[:TAG_MAX_LENGTH]
    if not tag:
        raise LhdError(
            f"Cannot tag an image for the branch {branch!r}: it has no letter, "
            "digit or underscore. Pass a branch name with --branch."
        )
    return tag


def plan_outputs(message: str, branch: str, sha: str) -> dict[str, str]:
    """Decide the jobs of one pipeline, as `name=value` outputs for GitHub Actions.

    `deploy` is "true" only when the message lets the deploy stage run and
    the branch deploys somewhere.

    Example: plan_outputs("Fix no-test", "staging", "abcd1234ef")["test"] == "false"
    """
    stages = stages_to_run(message)
    environment = deploy_environment(branch)
    outputs = {stage: str(stage in stages).lower() for stage in STAGES}
    outputs["deploy"] = str("deploy" in stages and environment is not None).lower()
    outputs["environment"] = environment or ""
    outputs["subtractive"] = str(is_subtractive(message)).lower()
    outputs["image_tag"] = sha[:8]
    outputs["branch_tag"] = branch_tag(branch)
    return outputs


def pull_argv(reference: str) -> list[str]:
    """Build `docker pull` of one image reference.

    Example: pull_argv("r.example.org/me/app/lucky:main")
    """
    return ["docker", "pull", reference]


def push_argv(reference: str) -> list[str]:
    """Build `docker push` of one image reference.

    Example: push_argv("r.example.org/me/app/lucky:abcd1234")
    """
    return ["docker", "push", reference]


def retag_argvs(image: str, source_tag: str, target_tag: str) -> list[list[str]]:
    """Build the commands that copy `image:source_tag` to `image:target_tag`.

    The CI job that runs them starts without the image, so it is pulled
    first, then tagged and pushed under the new tag.

    Example: retag_argvs("r.example.org/me/app/lucky", "abcd1234", "main")
    """
    source = f"{image}:{source_tag}"
    target = f"{image}:{target_tag}"
    return [pull_argv(source), ["docker", "tag", source, target], push_argv(target)]


def fab_deploy_argv(
    user: str, server: str, version: str, subtractive: bool
) -> list[str]:
    """Build the Fabric command that deploys `version` on `user@server`.

    Example: fab_deploy_argv("deploy", "app.example.org", "abcd1234ef", True) ==
        ["fab", "-H", "deploy@app.example.org", "deploy", "abcd1234ef", "--subtractive"]
    """
    argv = ["fab", "-H", f"{user}@{server}", "deploy", version]
    if subtractive:
        argv.append("--subtractive")
    return argv


@dataclass(frozen=True)
class SshServer:
    """The address of a deploy server, as `host` or `host:port`."""

    host: str
    port: int = 22

    @classmethod
    def parse(cls, address: str) -> SshServer:
        """Split `host[:port]`; IPv6 addresses need brackets: `[::1]:2222`.

        Example: SshServer.parse("app.example.org:2222").port == 2222
        """
        match = re.fullmatch(
            r"\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?|([^:\s@/\[\]]+)(?::(\d{1,5}))?",
            address,
        )
        if not match:
            raise LhdError(
                f"Invalid deploy server {address!r}: give a host name or address "
                "with an optional port, such as app.example.org or "
                "app.example.org:2222."
            )
        host = match.group(1) or match.group(3)
        port = int(match.group(2) or match.group(4) or 22)
        if not 0 < port < 65536:
            raise LhdError(f"Invalid port {port} in the deploy server {address!r}.")
        if ":" in host and port != 22:
            # Fabric 3 reads a host string with more than one ":" as a bare
            # IPv6 address, so it cannot carry a port.
            raise LhdError(
                f"Fabric cannot reach the IPv6 address {host} on port {port}: "
                "use a host name for the deploy server, or port 22."
            )
        return cls(host, port)

    @property
    def known_hosts_name(self) -> str:
        """The known_hosts name of the server: `host`, or `[host]:port` off port 22."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    @property
    def fabric_host(self) -> str:
        return self.host if self.port == 22 else f"{self.host}:{self.port}"


def known_host_lines(known_hosts: str, server: SshServer) -> list[str]:
    """Return the known_hosts lines with a key for `server`; raise when none does.

    Hashed host names (`ssh-keyscan -H`) are matched too.

    Example: known_host_lines(os.environ["DEPLOY_KNOWN_HOSTS"], SshServer("app.lan"))
    """
    lines = [line.strip() for line in known_hosts.replace("\r", "").splitlines()]
    matching = [
        line
        for line in lines
        if line
        and not line.startswith("#")
        and line_matches(line, server.known_hosts_name)
    ]
    if not matching:
        raise LhdError(
            f"The known hosts variable has no key for {server.known_hosts_name}. "
            f"Add the output of `ssh-keyscan -p {server.port} {server.host}`, "
            "after checking its fingerprint on the server (`ssh-keygen -lf "
            "/etc/ssh/ssh_host_ed25519_key.pub`)."
        )
    return matching


def line_matches(line: str, name: str) -> bool:
    """Return True when a known_hosts line contains a valid key for the host `name`."""
    from paramiko.hostkeys import HostKeyEntry, HostKeys, InvalidHostKey
    from paramiko.ssh_exception import SSHException

    try:
        entry = HostKeyEntry.from_line(line)
    except (InvalidHostKey, SSHException, ValueError):  # a malformed key
        return False
    if entry is None:
        return False
    keys = HostKeys()
    for hostname in entry.hostnames:
        keys.add(hostname, entry.key.get_name(), entry.key)
    return keys.lookup(name) is not None


def private_key_text(value: str) -> str:
    """Normalise a private key from a CI variable for `ssh-add -`.

    The variable contains the key itself or, for file-type variables, the path
    of a file that contains it. Carriage returns are dropped and a final
    newline is added, because OpenSSH rejects keys without one.

    Example: private_key_text("-----BEGIN OPENSSH PRIVATE KEY-----\\r\\n...")
    """
    text = value
    if not value.lstrip().startswith("-----BEGIN") and Path(value).is_file():
        text = Path(value).read_text(encoding="utf-8")
    text = text.replace("\r", "").strip()
    if not text.startswith("-----BEGIN"):
        raise LhdError(
            "The SSH key variable contains no private key: store the whole key "
            "file, from -----BEGIN to -----END, as the variable's value."
        )
    return text + "\n"


def parse_agent_output(output: str) -> dict[str, str]:
    """Read SSH_AUTH_SOCK and SSH_AGENT_PID from the output of `ssh-agent -s`.

    Example: parse_agent_output("SSH_AUTH_SOCK=/tmp/a/agent.1; export SSH_AUTH_SOCK;")
    """
    found = dict(re.findall(r"(SSH_AUTH_SOCK|SSH_AGENT_PID)=([^;\s]+)", output))
    if "SSH_AUTH_SOCK" not in found:
        raise LhdError(f"ssh-agent printed no SSH_AUTH_SOCK: {output.strip()!r}")
    return found


# ---------------------------------------------------------------------------
# CI variables. GitLab and GitHub name them differently; each reader tries
# GitLab's name, then GitHub's, then reads git.
# ---------------------------------------------------------------------------


def environment_value(*names: str) -> str | None:
    """Return the value of the first non-empty environment variable of `names`."""
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    return None


def git_output(root: Path, *args: str) -> str:
    try:
        result = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        )
    except FileNotFoundError as error:
        raise LhdError("git not found: install git.") from error
    if result.returncode != 0:
        raise LhdError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def commit_sha(root: Path) -> str:
    """Return the full SHA of the commit the pipeline runs for."""
    return environment_value("CI_COMMIT_SHA", "GITHUB_SHA") or git_output(
        root, "rev-parse", "--verify", "HEAD"
    )


def commit_tag(root: Path) -> str:
    """Return the image tag of the pipeline's commit: the first 8 characters of its SHA.

    GitLab's CI_COMMIT_SHORT_SHA is the same 8 characters, and the deploy
    picks the image by them too. (`git rev-parse --short=8` may print more
    when 8 are ambiguous.)
    """
    return commit_sha(root)[:8]


def branch_name(root: Path) -> str:
    """Return the branch the pipeline runs for."""
    branch = environment_value("CI_COMMIT_BRANCH", "GITHUB_HEAD_REF", "GITHUB_REF_NAME")
    branch = branch or git_output(root, "branch", "--show-current")
    if not branch:
        raise LhdError("No branch found (detached HEAD): pass one with --branch.")
    return branch


def commit_message(root: Path) -> str:
    """Return the message of the pipeline's commit.

    The GitHub workflow passes it in COMMIT_MESSAGE, because GitHub sets no
    variable with it.
    """
    message = environment_value("CI_COMMIT_MESSAGE", "COMMIT_MESSAGE")
    return (
        message if message is not None else git_output(root, "log", "-1", "--format=%B")
    )
