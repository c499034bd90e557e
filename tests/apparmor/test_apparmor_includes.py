"""Includes read from a node tree stay in it: symlinks and absolute paths are the
node's, as the node itself would read them, never the host's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.engines.apparmor import ProfileError, default_search_path, parse_profile_file

SECRET_RULE = "  /host/secret r,\n"


@pytest.fixture
def node(tmp_path: Path) -> Path:
    """A node tree, and beside it a host file it must never read."""
    (tmp_path / "secret").write_text(SECRET_RULE)
    root = tmp_path / "node"
    (root / "etc" / "apparmor.d" / "abstractions").mkdir(parents=True)
    return root


def parse(root: Path, body: str) -> list[str]:
    """The rules of a profile that includes what `body` says, read inside `root`."""
    path = root / "etc" / "apparmor.d" / "p"
    path.write_text(f"profile p {{\n{body}}}\n")
    pset = parse_profile_file(path, include_path=default_search_path(root), root=root)
    return [r.text for r in pset.profile().rules]


def test_a_symlink_to_an_absolute_path_is_the_node_path(node: Path) -> None:
    evil = node / "etc" / "apparmor.d" / "abstractions" / "evil"
    evil.symlink_to(node.parent / "secret")  # the host's file, by its absolute path
    with pytest.raises(ProfileError, match="Could not open 'abstractions/evil'"):
        parse(node, "  #include <abstractions/evil>\n")
    # the same path inside the node is what the node would read
    inside = node / str(node.parent / "secret").lstrip("/")
    inside.parent.mkdir(parents=True)
    inside.write_text("  /node/file r,\n")
    assert parse(node, "  #include <abstractions/evil>\n") == ["/node/file r,"]


def test_a_relative_symlink_cannot_climb_out(node: Path) -> None:
    (node / "etc" / "apparmor.d" / "abstractions" / "up").symlink_to("../../../../secret")
    with pytest.raises(ProfileError, match="Could not open 'abstractions/up'"):
        parse(node, "  #include <abstractions/up>\n")


def test_dotdot_in_an_include_name_cannot_climb_out(node: Path) -> None:
    with pytest.raises(ProfileError, match="Could not open"):
        parse(node, "  #include <../../../../secret>\n")
    with pytest.raises(ProfileError, match="Could not open"):
        parse(node, '  include "../../../../secret"\n')


def test_a_quoted_absolute_include_is_a_node_path(node: Path) -> None:
    with pytest.raises(ProfileError, match="Could not open"):
        parse(node, f'  include "{node.parent / "secret"}"\n')
    (node / "etc" / "extra").write_text("  /etc/extra r,\n")
    assert parse(node, '  include "/etc/extra"\n') == ["/etc/extra r,"]


def test_a_folder_include_skips_entries_that_lead_out(node: Path) -> None:
    folder = node / "etc" / "apparmor.d" / "local.d"
    folder.mkdir()
    (folder / "a").write_text("  /a r,\n")
    (folder / "b").symlink_to(node.parent / "secret")
    (folder / "c").symlink_to("/etc/apparmor.d/local.d/a")  # inside the node: followed
    assert parse(node, "  #include <local.d>\n") == ["/a r,", "/a r,"]


def test_a_fifo_is_refused_not_read(node: Path) -> None:
    import os

    os.mkfifo(node / "etc" / "apparmor.d" / "abstractions" / "pipe")
    with pytest.raises(ProfileError, match="not a regular file"):
        parse(node, "  #include <abstractions/pipe>\n")


def test_without_a_node_the_host_is_read(tmp_path: Path) -> None:
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "mine").write_text("  /srv/** r,\n")
    path = tmp_path / "p"
    path.write_text("profile p {\n  #include <mine>\n}\n")
    pset = parse_profile_file(path, include_path=[tmp_path / "inc"])
    assert [r.text for r in pset.profile().rules] == ["/srv/** r,"]
