"""Scenario packs: the same scenario set, the instructor's own included, for a whole room.

A pack is a zip file: one folder per scenario (`<id>/scenario.yaml`, ...) and a
manifest, `cks-lab-pack.json`: the pack format version, the pack's name, its
scenario ids and the sha256 of every file.

A pack comes from someone else, so unpacking trusts nothing in it. Everything
is checked before anything lands: entry names (no absolute path, no `..`, no
backslash, no duplicate, also not by case), entry types (no symlink or device),
sizes and counts (the declared ones first, then the bytes actually read: a zip
bomb stops at the limit), every checksum, the format version, and every
scenario as `cks-lab scenario validate` checks it. The scenarios are written to
a temporary folder beside the target and renamed into place: the target holds
the whole pack or nothing new.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from lab import __version__
from lab.errors import LabError
from lab.paths import bundled_scenarios_dir
from lab.scenarios import SCENARIO_FILE
from lab.scenarios.catalog import Catalog, packs_dir
from lab.scenarios.digest import folder_digest
from lab.scenarios.digest import scenario_files as _scenario_files
from lab.scenarios.loader import LoadedScenario, ScenarioError
from lab.scenarios.model import ID_RE
from lab.scenarios.scaffold import todo_markers, todo_summary

PACK_FORMAT = 1
FORMATS = (1,)
MANIFEST = "cks-lab-pack.json"
MAX_FILES = 2000  # the ten bundled scenarios hold ~40 files
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_MANIFEST_BYTES = 1024 * 1024
# Not packed: editor and VCS droppings (.git, .swp, .DS_Store) and Python caches.
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class PackInfo:
    name: str
    scenarios: list[str]  # every scenario of the set, bundled ones included
    files: int
    path: Path  # the zip written, or the folder unpacked into
    bundled: list[str] = field(default_factory=list)  # named only: every cks-lab has them
    warnings: list[str] = field(default_factory=list)


def check_name(name: str, what: str = "pack name") -> str:
    if not re.fullmatch(ID_RE, name):
        raise LabError(
            f"{name!r} is not a valid {what}: lowercase letters, digits and '-', "
            "1-63 characters, starting and ending with a letter or digit"
        )
    return name


# --- pack ------------------------------------------------------------------------------


def is_bundled(sc: LoadedScenario) -> bool:
    return sc.root.resolve().parent == bundled_scenarios_dir().resolve()


def build_pack(scenarios: list[LoadedScenario], out: Path, name: str) -> PackInfo:
    """Write the scenarios' folders and a manifest to the zip `out` (whole or not at all).

    A bundled scenario is named, not copied: the room's cks-lab has it (a copy
    would clash with it); its digest lets unpack say when the room's differs.
    """
    check_name(name)
    if not scenarios:
        raise LabError("no scenarios to pack; name them with --scenarios ID|DIR")
    ids = [sc.id for sc in scenarios]
    for i, sid in enumerate(ids):
        if sid in ids[:i]:
            raise LabError(f"scenario {sid!r} is named twice", file=str(scenarios[i].root))
    bundled = {sc.id: folder_digest(sc) for sc in scenarios if is_bundled(sc)}
    for sc in scenarios:
        if sc.id not in bundled and (todos := todo_markers(sc.root)):
            # a skeleton validates on purpose: an unfinished one must not reach a room
            raise LabError(
                f"scenario {sc.id!r} is not finished: {todo_summary(todos)} "
                "(replace them; `cks-lab scenario test` lists them too)",
                file=str(sc.root),
            )
    entries = [e for sc in scenarios if sc.id not in bundled for e in _scenario_files(sc)]
    if len(entries) > MAX_FILES:
        raise LabError(f"{len(entries)} files; a pack holds at most {MAX_FILES}")
    blobs = {arc: path.read_bytes() for arc, path in entries}
    if sum(len(b) for b in blobs.values()) > MAX_TOTAL_BYTES:
        raise LabError(f"the scenarios hold more than {MAX_TOTAL_BYTES} bytes; pack fewer")
    manifest = {
        "format": PACK_FORMAT,
        "name": name,
        "tool": f"cks-lab {__version__}",
        "scenarios": ids,
        "bundled": bundled,
        "files": {arc: hashlib.sha256(b).hexdigest() for arc, b in blobs.items()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
            _add(zf, MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
            for arc, data in blobs.items():
                _add(zf, arc, data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return PackInfo(name, ids, len(blobs), out, list(bundled))


def _add(zf: zipfile.ZipFile, arc: str, data: bytes) -> None:
    # fixed time and mode: the same scenarios give the same zip
    info = zipfile.ZipInfo(arc, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    zf.writestr(info, data)


# --- unpack: read and check everything ----------------------------------------------------


def _entry_problem(name: str) -> str | None:
    """Why an entry name cannot be unpacked, or None."""
    if _CONTROL.search(name):
        return "has a control character in its name"
    if "\\" in name:
        return "has a backslash in its name (a pack uses / only)"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path"
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        return "climbs out of the pack with '..'"
    if any(p in ("", ".") for p in parts):
        return "is not a plain relative path (empty or '.' part)"
    return None


@dataclass(frozen=True)
class _Pack:
    manifest: dict[str, Any]
    files: dict[str, bytes]  # name in the zip: content (checked)


def read_pack(path: Path) -> _Pack:
    """The pack's manifest and files, every check done; a LabError naming the entry if not."""
    src = str(path)
    try:
        st = path.stat()
    except OSError as e:
        raise LabError(f"cannot read it: {e.strerror or e}", file=src) from None
    if not stat.S_ISREG(st.st_mode):
        raise LabError("is not a regular file", file=src)
    if st.st_size > MAX_TOTAL_BYTES + MAX_MANIFEST_BYTES:
        raise LabError(f"is {st.st_size} bytes; a pack is at most {MAX_TOTAL_BYTES}", file=src)
    try:
        with zipfile.ZipFile(path) as zf:
            return _read_zip(zf, src)
    except LabError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as e:
        raise LabError(f"not a readable zip file: {e}", file=src) from None
    except (NotImplementedError, RuntimeError) as e:  # unknown compression, encryption
        raise LabError(f"cannot unpack it: {e}", file=src) from None


def _read_zip(zf: zipfile.ZipFile, src: str) -> _Pack:
    infos = zf.infolist()
    if len(infos) > MAX_FILES + 1:
        raise LabError(f"holds {len(infos)} entries; a pack holds at most {MAX_FILES}", file=src)
    seen: dict[str, str] = {}  # casefolded name: name
    files: dict[str, zipfile.ZipInfo] = {}
    declared = 0
    for info in infos:
        name = info.filename
        where = f"{src}:{name}"
        problem = _entry_problem(name)
        if problem:
            raise LabError(problem, file=where)
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no type recorded (not Unix)
        if kind == stat.S_IFLNK:
            raise LabError("is a symlink; a pack holds only plain files", file=where)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise LabError("is not a plain file or folder", file=where)
        if info.flag_bits & 0x1:
            raise LabError("is encrypted", file=where)
        key = name.rstrip("/").casefold()
        if key in seen:
            twin = seen[key]
            same = "the same name" if twin.rstrip("/") == name.rstrip("/") else f"{twin!r}"
            raise LabError(
                f"is in the pack twice ({same}, names differing only in case count)", file=where
            )
        seen[key] = name
        if info.is_dir():
            continue
        if info.file_size > MAX_FILE_BYTES:
            raise LabError(
                f"declares {info.file_size} bytes; a pack's files are at most {MAX_FILE_BYTES}",
                file=where,
            )
        declared += info.file_size
        if declared > MAX_TOTAL_BYTES:
            raise LabError(f"its files declare more than {MAX_TOTAL_BYTES} bytes in all", file=src)
        files[name] = info
    for name in files:  # "a/b" a file and "a/b/c" too: cannot both be unpacked
        parents = PurePosixPath(name).parents
        clash = next((str(p) for p in parents if str(p) in files), None)
        if clash:
            raise LabError(f"is inside {clash!r}, which is a file", file=f"{src}:{name}")
    if MANIFEST not in files:
        raise LabError(f"not a cks-lab scenario pack: no {MANIFEST} in it", file=src)
    manifest = _manifest(_read_entry(zf, files.pop(MANIFEST), src, MAX_MANIFEST_BYTES), src)
    listed: dict[str, str] = manifest["files"]
    for name in files:
        if name not in listed:
            raise LabError(f"is not listed in {MANIFEST}", file=f"{src}:{name}")
    for name in listed:
        if name not in files:
            raise LabError(f"is listed in {MANIFEST} but is not in the pack", file=f"{src}:{name}")
    ids = [i for i in manifest["scenarios"] if i not in manifest["bundled"]]
    for name in files:
        if name.split("/", 1)[0] not in ids or "/" not in name:
            raise LabError(
                "is not in the folder of a scenario the manifest lists "
                f"({', '.join(ids) or 'none but bundled ones'})",
                file=f"{src}:{name}",
            )
    for sid in ids:
        if f"{sid}/{SCENARIO_FILE}" not in files:
            raise LabError(f"scenario {sid!r} has no {sid}/{SCENARIO_FILE}", file=src)
    data: dict[str, bytes] = {}
    total = 0
    for name, info in files.items():
        blob = _read_entry(zf, info, src, MAX_FILE_BYTES)
        total += len(blob)
        if total > MAX_TOTAL_BYTES:
            raise LabError(f"its files hold more than {MAX_TOTAL_BYTES} bytes in all", file=src)
        if hashlib.sha256(blob).hexdigest() != listed[name]:
            raise LabError(
                f"checksum mismatch: its sha256 is not the one in {MANIFEST} (the pack was "
                "changed or damaged)",
                file=f"{src}:{name}",
            )
        data[name] = blob
    return _Pack(manifest, data)


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, src: str, limit: int) -> bytes:
    """An entry's bytes, never more than `limit` nor than it declares (a zip bomb lies)."""
    where = f"{src}:{info.filename}"
    if info.file_size > limit:
        raise LabError(f"declares {info.file_size} bytes; at most {limit}", file=where)
    try:
        with zf.open(info) as fh:
            blob = fh.read(info.file_size + 1)
    except (zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise LabError(f"cannot be read: {e}", file=where) from None
    if len(blob) != info.file_size:
        raise LabError(f"holds {len(blob)} bytes but declares {info.file_size}", file=where)
    return blob


def _manifest(raw: bytes, src: str) -> dict[str, Any]:
    where = f"{src}:{MANIFEST}"
    try:
        m = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise LabError(f"not a JSON manifest: {e}", file=where) from None
    if not isinstance(m, dict):
        raise LabError("must be a JSON object", file=where)
    fmt = m.get("format")
    if fmt not in FORMATS or isinstance(fmt, bool):
        raise LabError(
            f"pack format {fmt!r} is not one this cks-lab reads ({', '.join(map(str, FORMATS))}); "
            "upgrade cks-lab, or pack with the same version",
            file=where,
            item="format",
        )
    name = m.get("name")
    if not isinstance(name, str) or not re.fullmatch(ID_RE, name):
        raise LabError(f"{name!r} is not a pack name", file=where, item="name")
    ids = m.get("scenarios")
    if not isinstance(ids, list) or not ids:
        raise LabError("must list the pack's scenario ids", file=where, item="scenarios")
    for i, sid in enumerate(ids):
        if not isinstance(sid, str) or not re.fullmatch(ID_RE, sid):
            raise LabError(f"{sid!r} is not a scenario id", file=where, item=f"scenarios[{i}]")
        if sid in ids[:i]:
            raise LabError(f"{sid!r} is listed twice", file=where, item=f"scenarios[{i}]")
    bundled = m.setdefault("bundled", {})
    if not isinstance(bundled, dict):
        raise LabError("must map bundled scenario ids to digests", file=where, item="bundled")
    for sid, digest in bundled.items():
        if sid not in ids:
            raise LabError(f"{sid!r} is not in scenarios", file=where, item=f"bundled.{sid}")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise LabError("is not a sha256 (64 hex digits)", file=where, item=f"bundled.{sid}")
    files = m.get("files")
    if not isinstance(files, dict):
        raise LabError("must map every file to its sha256", file=where, item="files")
    for key, digest in files.items():
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise LabError("is not a sha256 (64 hex digits)", file=where, item=f"files.{key}")
    return m


# --- unpack: validate, check clashes, move into place ---------------------------------------


def _validate(tmp: Path, ids: list[str], src: str) -> list[LabError]:
    """Every scenario checked as `scenario validate` does, errors located in the pack."""
    from lab import service

    errors: list[LabError] = []
    for sid in ids:
        _, errs = service.validate_folder(tmp / sid)
        for e in errs:
            where = e.file
            if where and Path(where).is_relative_to(tmp):
                where = f"{src}:{Path(where).relative_to(tmp).as_posix()}"
            elif where and Path(where).resolve().is_relative_to(tmp.resolve()):
                where = f"{src}:{Path(where).resolve().relative_to(tmp.resolve()).as_posix()}"
            errors.append(LabError(e.message, file=where, line=e.line, item=e.item))
    return errors


def _clashes(ids: list[str], catalog: Catalog, target: Path) -> None:
    """Refuse an id the catalog already knows from elsewhere (the first folder would win)."""
    bundled = bundled_scenarios_dir().resolve()
    packs = packs_dir().resolve()
    here = target.resolve()
    for folder in catalog.folders():
        parent = folder.resolve().parent
        if folder.name not in ids or parent == here:
            continue
        if parent == bundled:
            raise LabError(
                f"scenario {folder.name!r} is a bundled scenario of cks-lab; a pack cannot "
                "replace it (rename the pack's scenario)"
            )
        if parent.parent == packs:
            raise LabError(
                f"scenario {folder.name!r} is already in pack {parent.name!r} ({parent}); "
                f"remove that pack first, or rename the scenario"
            )
        raise LabError(f"scenario {folder.name!r} is already known from {parent}")


class InvalidPack(ScenarioError):
    """The pack's scenarios do not validate; `errors` holds every problem, located."""


def unpack(
    path: Path, catalog: Catalog, into: Path | None = None, *, replace: bool = False
) -> PackInfo:
    """Check the pack at `path` and unpack it to `into` (default: packs_dir()/<name>)."""
    pack = read_pack(path)
    name: str = pack.manifest["name"]
    bundled: dict[str, str] = pack.manifest["bundled"]
    ids = [i for i in pack.manifest["scenarios"] if i not in bundled]
    warnings = _check_bundled(bundled, pack.manifest.get("tool"), catalog, str(path))
    target = into if into is not None else packs_dir() / name
    if os.path.lexists(target):
        if target.is_symlink() or not target.is_dir():
            raise LabError("exists and is not a folder; choose another --into", file=str(target))
        if any(target.iterdir()):
            if not (target / MANIFEST).is_file():
                raise LabError(
                    "exists and is not a pack's folder; choose another --into", file=str(target)
                )
            if not replace:
                raise LabError(
                    "a pack is already unpacked here; add --replace to replace it",
                    file=str(target),
                )
    _clashes(ids, catalog, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".unpack"))
    try:
        _write(tmp, pack)
        errors = _validate(tmp, ids, str(path))
        if errors:
            raise InvalidPack(errors)
        os.chmod(tmp, 0o755)
        _move_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PackInfo(
        name, pack.manifest["scenarios"], len(pack.files), target, list(bundled), warnings
    )


def _check_bundled(bundled: dict[str, str], tool: Any, catalog: Catalog, src: str) -> list[str]:
    """The bundled scenarios a pack names must be this cks-lab's; a different version
    of one is a warning (the room would work on another text than the instructor's)."""
    warnings = []
    made_by = tool if isinstance(tool, str) else "another cks-lab"
    for sid, digest in bundled.items():
        folder = bundled_scenarios_dir() / sid
        if not (folder / SCENARIO_FILE).is_file():
            raise LabError(
                f"the pack needs the bundled scenario {sid!r}, which this cks-lab "
                f"({__version__}) does not have; the pack was made with {made_by}",
                file=src,
            )
        if folder_digest(catalog.load(folder)) != digest:
            warnings.append(
                f"bundled scenario {sid!r} differs from the one the pack was made with "
                f"({made_by}); this cks-lab's version is used"
            )
    return warnings


def _write(tmp: Path, pack: _Pack) -> None:
    root = tmp.resolve()
    for name, blob in [(MANIFEST, _manifest_bytes(pack)), *pack.files.items()]:
        dest = (tmp / name).resolve()
        if not dest.is_relative_to(root):  # names were checked; this is the belt to those braces
            raise LabError("escapes the target folder", file=name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "xb") as fh:  # x: never over anything already there
            fh.write(blob)
        os.chmod(dest, 0o644)


def _manifest_bytes(pack: _Pack) -> bytes:
    return (json.dumps(pack.manifest, indent=2) + "\n").encode()


def _move_into_place(tmp: Path, target: Path) -> None:
    if not os.path.lexists(target):
        os.rename(tmp, target)
        return
    if not any(target.iterdir()):
        target.rmdir()
        os.rename(tmp, target)
        return
    # --replace: the old pack steps aside, the new one takes its name, the old one goes
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
    old.rmdir()
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def resolve_refs(refs: Iterable[str], catalog: Catalog) -> list[LoadedScenario]:
    """Catalog ids, and author folders given as paths with a "/"; each one validated."""
    from lab import service

    return [service.scenario_by_ref(catalog, ref) for ref in refs]
