"""Image selection: the version's tag, else the newest earlier tag that pulls."""

from __future__ import annotations

import pytest

from lhd import registry
from lhd.errors import LhdError

IMAGE = "registry.example.org/me/shop/lucky"


def test_selects_tag_of_version_first():
    tried = []

    def pulls(reference):
        tried.append(reference)
        return True

    assert (
        registry.select(IMAGE, ["aaaaaaaa", "bbbbbbbb"], pulls) == f"{IMAGE}:aaaaaaaa"
    )
    assert tried == [f"{IMAGE}:aaaaaaaa"]


def test_selects_newest_earlier_tag_that_pulls():
    available = {f"{IMAGE}:cccccccc", f"{IMAGE}:dddddddd"}
    tags = ["aaaaaaaa", "bbbbbbbb", "cccccccc", "dddddddd"]
    assert registry.select(IMAGE, tags, available.__contains__) == f"{IMAGE}:cccccccc"


def test_no_tag_pulls_names_every_tag():
    with pytest.raises(LhdError) as raised:
        registry.select(IMAGE, ["aaaaaaaa", "bbbbbbbb"], lambda reference: False)
    message = str(raised.value)
    assert "aaaaaaaa, bbbbbbbb" in message
    assert "inv build" in message


@pytest.mark.parametrize(
    ("image", "host"),
    [
        ("registry.gitlab.com/me/app/lucky", "registry.gitlab.com"),
        ("127.0.0.1:5000/me/app/lucky", "127.0.0.1:5000"),
        ("localhost/me/app/lucky", "localhost"),
    ],
)
def test_registry_host(image, host):
    assert registry.registry_host(image) == host


def test_registry_host_rejects_bare_path():
    with pytest.raises(LhdError, match="registry host"):
        registry.registry_host("me/app/lucky")


def test_tags_to_remove_keeps_listed():
    assert registry.tags_to_remove(["a", "b", "<none>", "c"], ["b"]) == ["a", "c"]
