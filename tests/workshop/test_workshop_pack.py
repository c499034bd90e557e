"""`cks-lab workshop pack` / `unpack`: a scenario set for a room, checked whole before it lands.

The hostile packs are built here with zipfile: each refusal is located, and
after it the packs folder holds nothing new (no half pack, no temp folder).
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import struct
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.scenarios.catalog import Catalog, packs_dir
from lab.workshop import pack as wp


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def author(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An instructor's folder with two scenarios of their own (skeletons, valid, their
    TODOs replaced: a pack refuses a scenario with TODOs left)."""
    monkeypatch.chdir(tmp_path)
    for sid, skill in (("room-falco", "falco"), ("room-apparmor", "apparmor")):
        code, _, err = run("scenario", "new", sid, "--skill", skill)
        assert code == 0, err
        for f in (tmp_path / sid).rglob("*"):
            if f.is_file():
                f.write_text(f.read_text().replace("TODO", "Done"))
    return tmp_path


def _leftovers() -> list[str]:
    root = packs_dir()
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


# --- pack, unpack, the catalog sees it ---------------------------------------------------


def test_pack_and_unpack_a_room(author: Path) -> None:
    code, out, err = run(
        "workshop",
        "pack",
        "--scenarios",
        "falco-shell-alert",
        "./room-falco",
        "./room-apparmor",
        "-o",
        "week-1.zip",
    )
    assert code == 0, err
    assert "pack 'week-1', 3 scenario(s)" in out and "named, not copied: falco-shell-alert" in out
    with zipfile.ZipFile(author / "week-1.zip") as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read(wp.MANIFEST))
        # every file listed with its sha256; the bundled scenario is named, not copied
        for name in names:
            if name != wp.MANIFEST:
                assert manifest["files"][name] == hashlib.sha256(zf.read(name)).hexdigest()
    assert manifest["format"] == 1 and manifest["name"] == "week-1"
    assert manifest["scenarios"] == ["falco-shell-alert", "room-falco", "room-apparmor"]
    assert list(manifest["bundled"]) == ["falco-shell-alert"]
    assert "room-falco/scenario.yaml" in names and "room-apparmor/manifests/app.yaml" in names
    assert not any(n.startswith("falco-shell-alert/") for n in names)

    code, out, err = run("workshop", "unpack", "week-1.zip")
    assert code == 0, err
    target = packs_dir() / "week-1"
    assert f"into {target}: room-falco, room-apparmor (and the bundled falco-shell-alert)" in out
    assert (target / "room-falco" / "scenario.yaml").read_bytes() == (
        author / "room-falco" / "scenario.yaml"
    ).read_bytes()
    # the catalog (and so list, start, grade) sees the pack's scenarios
    ids = {sc.id for sc in Catalog.default().scan()[0]}
    assert {"room-falco", "room-apparmor", "falco-shell-alert"} <= ids
    code, out, _ = run("list")
    assert "room-apparmor" in out
    code, out, _ = run("scenario", "test", "room-falco")  # by id now, from the pack
    assert code == 1 and "the reference solution fails" in out

    # the same pack again: only with --replace, and then whole
    code, _, err = run("workshop", "unpack", "week-1.zip")
    assert code == 2 and "a pack is already unpacked here; add --replace" in err
    code, _, err = run("workshop", "unpack", "week-1.zip", "--replace")
    assert code == 0, err
    assert _leftovers() == ["week-1"]


def test_the_same_zip_from_the_same_scenarios(author: Path) -> None:
    run("workshop", "pack", "-s", "./room-falco", "-o", "a.zip", "--name", "same")
    run("workshop", "pack", "-s", "./room-falco", "-o", "b.zip", "--name", "same")
    assert (author / "a.zip").read_bytes() == (author / "b.zip").read_bytes()


def test_unpack_into_a_folder(author: Path) -> None:
    run("workshop", "pack", "-s", "./room-apparmor", "-o", "p.zip")
    code, out, err = run("workshop", "unpack", "p.zip", "--into", "room")
    assert code == 0, err
    assert (author / "room" / "room-apparmor" / "scenario.yaml").is_file()
    assert "cks-lab --scenarios room list" in out
    assert _leftovers() == []
    (author / "other").mkdir()
    (author / "other" / "notes.txt").write_text("mine")
    code, _, err = run("workshop", "unpack", "p.zip", "--into", "other", "--replace")
    assert code == 2 and "is not a pack's folder" in err
    assert (author / "other" / "notes.txt").read_text() == "mine"


def test_pack_refuses_what_it_cannot_pack(author: Path) -> None:
    code, _, err = run("workshop", "pack", "-s", "no-such-id", "-o", "p.zip")
    assert code == 2 and "no scenario 'no-such-id'" in err
    code, _, err = run(
        "workshop", "pack", "-s", "./room-falco", "-s", "./room-falco", "-o", "p.zip"
    )
    assert code == 2 and "'room-falco' is named twice" in err
    (author / "room-falco" / "solution" / "link").symlink_to("/etc/passwd")
    code, _, err = run("workshop", "pack", "-s", "./room-falco", "-o", "p.zip")
    assert code == 2 and "room-falco/solution/link: is a symlink" in err
    code, _, err = run("workshop", "pack", "-s", "./room-apparmor", "-o", "My Pack.zip")
    assert code == 2 and "not a valid pack name" in err
    assert not list(author.glob("*.zip")) and not list(author.glob(".*.tmp"))


# --- hostile and broken packs ---------------------------------------------------------------


SCENARIO = "room-falco"


def _files(author: Path) -> dict[str, bytes]:
    root = author / SCENARIO
    return {
        f"{SCENARIO}/{p.relative_to(root).as_posix()}": p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _manifest(files: dict[str, bytes], **over: object) -> dict[str, object]:
    m: dict[str, object] = {
        "format": 1,
        "name": "evil",
        "scenarios": [SCENARIO],
        "bundled": {},
        "files": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()},
    }
    m.update(over)
    return m


def _zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return path


def _pack(
    path: Path,
    files: dict[str, bytes],
    manifest: dict[str, object] | None = None,
    extra: tuple[tuple[zipfile.ZipInfo | str, bytes], ...] = (),
) -> Path:
    m = _manifest(files) if manifest is None else manifest
    entries: list[tuple[zipfile.ZipInfo | str, bytes]] = [(wp.MANIFEST, json.dumps(m).encode())]
    entries += list(files.items())
    entries += list(extra)
    return _zip(path, entries)


def _symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def _hostile(author: Path) -> list[tuple[str, Path, str]]:
    files = _files(author)
    yaml = f"{SCENARIO}/scenario.yaml"
    listed = lambda extra: _manifest({**files, **extra})  # noqa: E731
    evil = {f"{SCENARIO}/../../evil.sh": b"#!/bin/sh\n"}
    absolute = {"/etc/cron.d/evil": b"* * * * * root sh\n"}
    backslash = {f"{SCENARIO}\\..\\evil": b"x"}
    t = author / "hostile"
    t.mkdir()
    link_name, link_data = _symlink(f"{SCENARIO}/solution/key", "/root/.ssh/id_rsa")
    tampered = dict(files)
    tampered[yaml] = files[yaml].replace(b"difficulty: medium", b"difficulty: easy")
    bomb = {f"{SCENARIO}/bomb": b"\0" * (wp.MAX_FILE_BYTES + 1)}
    broken = dict(files)
    broken[yaml] = files[yaml].replace(b"type: falco_rules_load", b"type: falco_rules_lode")
    return [
        (
            "zip-slip",
            _pack(t / "slip.zip", {**files, **evil}, listed(evil)),
            r"slip\.zip:room-falco/\.\./\.\./evil\.sh: climbs out of the pack with '\.\.'",
        ),
        (
            "absolute",
            _pack(t / "abs.zip", {**files, **absolute}, listed(absolute)),
            r"abs\.zip:/etc/cron\.d/evil: is an absolute path",
        ),
        (
            "backslash",
            _pack(t / "bs.zip", {**files, **backslash}, listed(backslash)),
            r"bs\.zip:room-falco\\\.\.\\evil: has a backslash",
        ),
        (
            "symlink",
            _pack(
                t / "link.zip",
                files,
                listed({link_name.filename: link_data}),
                ((link_name, link_data),),
            ),
            r"link\.zip:room-falco/solution/key: is a symlink",
        ),
        (
            "duplicate",
            _pack(t / "dup.zip", files, None, ((yaml, b"id: other\n"),)),
            r"dup\.zip:room-falco/scenario\.yaml: is in the pack twice \(the same name",
        ),
        (
            "case twin",
            _pack(t / "case.zip", files, None, ((yaml.upper(), b"x"),)),
            r"case\.zip:ROOM-FALCO/SCENARIO\.YAML: is in the pack twice "
            r"\('room-falco/scenario\.yaml'",
        ),
        (
            "not listed",
            _pack(t / "extra.zip", files, None, ((f"{SCENARIO}/extra.sh", b"x"),)),
            r"extra\.zip:room-falco/extra\.sh: is not listed in cks-lab-pack\.json",
        ),
        (
            "missing",
            _pack(
                t / "miss.zip",
                {k: v for k, v in files.items() if "solution" not in k},
                _manifest(files),
            ),
            r"miss\.zip:room-falco/solution/falco_rules\.local\.yaml: is listed in cks-lab-pack",
        ),
        (
            "checksum",
            _pack(t / "sum.zip", tampered, _manifest(files)),
            r"sum\.zip:room-falco/scenario\.yaml: checksum mismatch",
        ),
        (
            "format",
            _pack(t / "v2.zip", files, _manifest(files, format=2)),
            r"v2\.zip:cks-lab-pack\.json: format: pack format 2 is not one this cks-lab "
            r"reads \(1\)",
        ),
        (
            "declared size",
            _pack(t / "big.zip", {**files, **bomb}, listed(bomb)),
            r"big\.zip:room-falco/bomb: declares 4194305 bytes; a pack's files are at most",
        ),
        (
            "outside",
            _pack(t / "out.zip", {**files, "other/x": b"x"}, listed({"other/x": b"x"})),
            r"out\.zip:other/x: is not in the folder of a scenario the manifest lists",
        ),
        (
            "no manifest",
            _zip(t / "none.zip", list(files.items())),
            r"none\.zip: not a cks-lab scenario pack: no cks-lab-pack\.json",
        ),
        (
            "not a zip",
            _write(t / "text.zip", b"PK but not really"),
            r"text\.zip: not a readable zip file",
        ),
        (
            "bundled clash",
            _renamed_pack(t / "clash.zip", files, "falco-shell-alert"),
            r"scenario 'falco-shell-alert' is a bundled scenario of cks-lab; a pack cannot replace",
        ),
        (
            "invalid scenario",
            _pack(t / "bad.zip", broken, _manifest(broken)),
            r"bad\.zip:room-falco/scenario\.yaml:\d+: tasks\[0\]\.checks\[0\]\.type: unknown check "
            r"type 'falco_rules_lode'",
        ),
    ]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _renamed_pack(path: Path, files: dict[str, bytes], new_id: str) -> Path:
    """The author's scenario under a bundled scenario's id (valid, else)."""
    moved = {
        n.replace(SCENARIO, new_id, 1): b.replace(
            f"id: {SCENARIO}".encode(), f"id: {new_id}".encode()
        )
        for n, b in files.items()
    }
    return _pack(path, moved, _manifest(moved, scenarios=[new_id]))


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_hostile_and_broken_packs_are_refused_before_anything_lands(author: Path) -> None:
    (packs_dir() / "kept").mkdir(parents=True)
    for what, zpath, pattern in _hostile(author):
        code, _, err = run("workshop", "unpack", str(zpath))
        assert code == 2, (what, err)
        assert re.search(pattern, err), (what, err)
        assert "Traceback" not in err
        assert _leftovers() == ["kept"], what  # nothing landed, no temp folder left
    assert not (author / "evil.sh").exists() and not (author.parent / "evil.sh").exists()


def test_an_invalid_scenario_reports_every_located_error(author: Path) -> None:
    files = _files(author)
    yaml = f"{SCENARIO}/scenario.yaml"
    files[yaml] = (
        files[yaml]
        .replace(b"type: falco_rules_load", b"type: falco_rules_lode")
        .replace(b"step: benign", b"step: nowhere")
    )
    zpath = _pack(author / "bad.zip", files)
    code, _, err = run("workshop", "unpack", str(zpath))
    lines = err.splitlines()
    assert code == 2
    assert any("falco_rules_lode" in line for line in lines)
    assert any("no attack step 'nowhere'" in line for line in lines)
    assert all(line.startswith(f"{zpath}:") or "cks-lab: error:" in line for line in lines)
    assert lines[-1] == (
        f"cks-lab: error: {zpath}: 2 problem(s) in the pack's scenarios (above); "
        "nothing was unpacked"
    )


def test_sizes_are_checked_as_read_not_only_as_declared(author: Path) -> None:
    files = _files(author)
    good = _pack(author / "good.zip", files).read_bytes()
    name = f"{SCENARIO}/scenario.yaml".encode()
    for declared, pattern in (
        (10, "cannot be read: Bad CRC-32"),
        (len(files[name.decode()]) + 5, "holds"),
    ):
        data = bytearray(good)
        at = data.index(b"PK\x01\x02")  # the central directory: names at +46, sizes at +24
        while data[at + 46 : at + 46 + len(name)] != name:
            at = data.index(b"PK\x01\x02", at + 4)
        struct.pack_into("<I", data, at + 24, declared)  # its uncompressed size
        lying = _write(author / f"lie-{declared}.zip", bytes(data))
        with pytest.raises(wp.LabError, match=pattern):
            wp.read_pack(lying)


def test_count_and_total_limits(author: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _files(author)
    monkeypatch.setattr(wp, "MAX_FILES", 2)
    with pytest.raises(wp.LabError, match=r"holds 4 entries; a pack holds at most 2"):
        wp.read_pack(_pack(author / "many.zip", files))
    monkeypatch.setattr(wp, "MAX_FILES", 2000)
    monkeypatch.setattr(wp, "MAX_TOTAL_BYTES", 1000)
    with pytest.raises(wp.LabError, match=r"declare more than 1000 bytes in all"):
        wp.read_pack(_pack(author / "total.zip", files))


def test_a_clash_with_another_pack(author: Path) -> None:
    run("workshop", "pack", "-s", "./room-falco", "-o", "one.zip")
    run("workshop", "pack", "-s", "./room-falco", "-o", "two.zip")
    assert run("workshop", "unpack", "one.zip")[0] == 0
    code, _, err = run("workshop", "unpack", "two.zip")
    assert code == 2 and "scenario 'room-falco' is already in pack 'one'" in err
    assert _leftovers() == ["one"]


def test_bundled_scenarios_are_named_and_must_exist(author: Path) -> None:
    digest = "0" * 64  # not the digest of this cks-lab's falco-shell-alert
    ok = _zip(
        author / "b.zip",
        [
            (
                wp.MANIFEST,
                json.dumps(
                    _manifest(
                        {}, scenarios=["falco-shell-alert"], bundled={"falco-shell-alert": digest}
                    )
                ).encode(),
            )
        ],
    )
    code, out, err = run("workshop", "unpack", str(ok))
    assert code == 0, err
    assert "differs from the one the pack was made with" in err
    gone = _zip(
        author / "g.zip",
        [
            (
                wp.MANIFEST,
                json.dumps(
                    _manifest(
                        {}, name="gone", scenarios=["retired-one"], bundled={"retired-one": digest}
                    )
                ).encode(),
            )
        ],
    )
    code, _, err = run("workshop", "unpack", str(gone))
    assert code == 2 and "needs the bundled scenario 'retired-one'" in err
    assert _leftovers() == ["evil"]
