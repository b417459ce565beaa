"""The project's image in the container registry: login, selection by
commit, and pruning of old tags on the server."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lhd.errors import LhdError
from lhd.remote import RemoteRunner

# A commit without an image of its own (CI skipped the build, say) is
# deployed with the image of the newest of this many commits that has one.
SEARCH_DEPTH = 10


def registry_host(registry_image: str) -> str:
    """Return the registry part of `<host>/<namespace>/<repo>/lucky`."""
    host, _, rest = registry_image.partition("/")
    if not rest or not ("." in host or ":" in host or host == "localhost"):
        raise LhdError(
            f"The registry image {registry_image!r} in lhd.toml does not start "
            "with a registry host (such as registry.gitlab.com/); fix it with "
            "`copier update`."
        )
    return host


def login_argv(host: str, user: str) -> list[str]:
    # The password goes to standard input, never to the command line.
    return ["docker", "login", "--username", user, "--password-stdin", host]


def pull_argv(reference: str) -> list[str]:
    return ["docker", "pull", "--quiet", reference]


def list_tags_argv(registry_image: str) -> list[str]:
    return ["docker", "image", "ls", "--format", "{{.Tag}}", registry_image]


def remove_argv(references: Sequence[str]) -> list[str]:
    return ["docker", "image", "rm", *references]


def select(
    registry_image: str, tags: Sequence[str], pulls: Callable[[str], bool]
) -> str:
    """Return the reference of the first tag in `tags` whose image `pulls`."""
    for tag in tags:
        reference = f"{registry_image}:{tag}"
        if pulls(reference):
            return reference
    raise LhdError(
        f"No image of {registry_image} found for {tags[0]} or its "
        f"{len(tags) - 1} previous commits (tried tags {', '.join(tags)}). Build "
        "and push one (`inv build`, then `docker push`, or let CI do it), and "
        "check that the server is logged in to the registry (`fab bootstrap`)."
    )


def pull_on(remote: RemoteRunner) -> Callable[[str], bool]:
    """Return a check that pulls a reference on the server and reports success."""

    def pulls(reference: str) -> bool:
        return remote.succeeds(pull_argv(reference))

    return pulls


def login(remote: RemoteRunner, host: str, user: str, password: str) -> None:
    try:
        remote.run(
            login_argv(host, user),
            stdin=password,
            hide=True,
            what=f"Logging in to the registry {host} as {user}",
        )
    except LhdError as error:
        raise LhdError(
            f"{error}\nCheck the registry host (registry_image in lhd.toml), the "
            "user (--registry-user) and the password or token "
            "(LHD_REGISTRY_PASSWORD), then run bootstrap again: it keeps what "
            "it already wrote."
        ) from error


def tags_to_remove(tags: Sequence[str], kept: Sequence[str]) -> list[str]:
    return [tag for tag in tags if tag not in kept and tag != "<none>"]


def prune(remote: RemoteRunner, registry_image: str, kept: Sequence[str]) -> list[str]:
    """Remove the server's images of the project except the `kept` tags.

    An image that a container still uses stays: `docker image rm` refuses it.
    """
    tags = remote.output(list_tags_argv(registry_image), what="Listing images").split()
    removed = []
    for tag in tags_to_remove(tags, kept):
        if remote.succeeds(remove_argv([f"{registry_image}:{tag}"])):
            removed.append(tag)
    return removed
