"""Falco's rules loading results: ``falco -V`` JSON and its verbose load text.

``parse_validate_json`` reads ``falco -V FILE... -o json_output=true``;
``parse_load_text`` reads the same results as Falco prints them in its log (an
``Error:`` at start-up, a refused hot reload's reason, warnings). Both give
lab.evidence FalcoRulesFile records. They are apart from lab.kind.falco_log (the
pod-log parser, which re-exports them) because they read another output of Falco;
the log parser uses only the rules status line and the one-line JSON helper here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lab.evidence import FalcoMessage, FalcoRulesFile

# A rules file's load status line: "<file>: Ok", "...: Ok, with warnings", "...: Invalid".
RULES_STATUS_RE = re.compile(r"^(?P<file>\S.*?): (?P<status>Ok, with warnings|Ok|Invalid)$")


def json_object(line: str) -> dict[str, Any] | None:
    """The JSON object ``line`` holds, or None (not JSON, or JSON but no object)."""
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


_ITEM_TYPES = ("rule", "macro", "list")


def _locate(
    locations: Sequence[tuple[str, str, str, int]], file: str | None
) -> tuple[int | None, str | None]:
    """(1-based line, "rule 'x'") from Falco's location chain (item_type, item_name, name, line).

    Falco's lines are YAML marks, 0-based; the precise line is the last location
    in the file itself (later ones are inside a condition string, named by it).
    """
    line = None
    for kind, _, name, at in locations:
        # "rules content" is the whole file (0:0): no line to point at.
        if file is not None and name == file and kind != "rules content" and at >= 0:
            line = at + 1
    named = [(t, n) for t, n, _, _ in locations if n]
    top = [(t, n) for t, n in named if t in _ITEM_TYPES]
    picks = top or named
    return line, (f"{picks[-1][0]} '{picks[-1][1]}'" if picks else None)


def _status(successful: bool, errors: int, warnings: int) -> str:
    if not successful or errors:
        return "Invalid"
    return "Ok, with warnings" if warnings else "Ok"


def _json_messages(result: Mapping[str, Any], name: str) -> list[FalcoMessage]:
    messages = []
    for severity, key in (("error", "errors"), ("warning", "warnings")):
        entries = result.get(key)
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, Mapping):
                continue
            ctx = entry.get("context")
            raw_locs = ctx.get("locations") if isinstance(ctx, Mapping) else None
            locs = []
            for loc in raw_locs if isinstance(raw_locs, list) else []:
                if not isinstance(loc, Mapping):
                    continue
                pos = loc.get("position")
                pos = pos if isinstance(pos, Mapping) else {}
                at = pos.get("line")
                locs.append(
                    (
                        str(loc.get("item_type", "")),
                        str(loc.get("item_name", "")),
                        str(pos.get("name", "")),
                        at if isinstance(at, int) else -1,
                    )
                )
            line, item = _locate(locs, name)
            code = entry.get("code")
            messages.append(
                FalcoMessage(
                    severity=severity,
                    message=str(entry.get("message", "")),
                    file=name,
                    line=line if line is not None and line > 0 else None,
                    item=item,
                    code=str(code) if code else None,
                )
            )
    return messages


def _find_results(text: str) -> list[Any] | None:
    candidates = [text.strip(), *(ln.strip() for ln in text.splitlines())]
    for candidate in candidates:
        obj = json_object(candidate)
        if obj is not None and isinstance(obj.get("falco_load_results"), list):
            return list(obj["falco_load_results"])
    return None


def parse_validate_json(
    text: str, files: Sequence[str], *, stop_at_invalid: bool = False
) -> list[FalcoRulesFile]:
    """``falco -V FILE... -o json_output=true`` output -> one FalcoRulesFile per file.

    ``files``: the paths validated, in order (Falco names each result by the path
    it was given). A file without a result is "Not loaded". ``stop_at_invalid``
    mirrors Falco's start-up, which stops at the first invalid file: the files
    after it become "Not loaded" (``-V`` itself goes on and may report errors
    that only follow from the invalid file). Without any JSON (Falco failed
    before validating), every file is "Not loaded" and Falco's error line is a
    message of the file it names, else of the first file.
    """
    results = _find_results(text)
    if results is None:
        out = [FalcoRulesFile(path, "Not loaded") for path in files]
        why = _error_line(text)
        if why and out:
            target = next((f for f in out if f.path in why), out[0])
            target.messages.append(FalcoMessage("error", why, file=target.path))
        return out
    by_name: dict[str, FalcoRulesFile] = {}
    order: list[str] = []
    for result in results:
        if not isinstance(result, Mapping):
            continue
        name = str(result.get("name", ""))
        messages = _json_messages(result, name)
        errors = sum(1 for m in messages if m.severity == "error")
        status = _status(bool(result.get("successful", False)), errors, len(messages) - errors)
        by_name[name] = FalcoRulesFile(name, status, messages)
        order.append(name)
    paths = list(files) + [n for n in order if n not in files]
    out = [by_name.get(p) or FalcoRulesFile(p, "Not loaded") for p in paths]
    if stop_at_invalid:
        failed = next((i for i, f in enumerate(out) if f.status == "Invalid"), None)
        if failed is not None:
            out[failed + 1 :] = [FalcoRulesFile(f.path, "Not loaded") for f in out[failed + 1 :]]
    return out


def _error_line(text: str) -> str | None:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in lines:
        if line.startswith("Error: "):
            return line[len("Error: ") :]
    return lines[-1] if lines else None


# "In rules content: (file:0:0)", "    rule 'x': (file:3:2)",
# "    condition expression: ("...":1:5)"
_LOCATION_RE = re.compile(
    r"^(?:In |    )(?P<type>[a-z_ ]+?)(?: '(?P<name>.*)')?: \((?P<where>.*):(?P<line>\d+):\d+\)$"
)
_CODE_RE = re.compile(r"^(?P<code>LOAD_[A-Z_]+) \([^)]*\): (?P<message>.*)$")
_COUNT_RE = re.compile(r"^(?P<n>\d+) (?P<kind>Errors|Warnings):$")


def parse_load_text(text: str) -> list[FalcoRulesFile]:
    """Falco's verbose load result (``Error: ...`` at start-up, a hot restart failure's
    reason, warnings in the log) -> the files it names, with their messages.

    Text that is no load result (a plugin or configuration error) gives [].
    """
    files: list[FalcoRulesFile] = []
    severity = "error"
    locs: list[tuple[str, str, str, int]] = []
    in_snippet = False
    for raw in text.splitlines():
        line = raw.rstrip()
        if line == "------":
            in_snippet = not in_snippet
            continue
        if in_snippet:
            continue
        status = RULES_STATUS_RE.match(line.removeprefix("Error: "))
        if status:
            files.append(FalcoRulesFile(status["file"], status["status"]))
            locs = []
            continue
        count = _COUNT_RE.match(line)
        if count:
            severity = "error" if count["kind"] == "Errors" else "warning"
            continue
        loc = _LOCATION_RE.match(line)
        if loc:
            if line.startswith("In "):
                locs = []
            locs.append((loc["type"], loc["name"] or "", loc["where"], int(loc["line"])))
            continue
        code = _CODE_RE.match(line)
        if code and files:
            current = files[-1]
            at, item = _locate(locs, current.path)
            current.messages.append(
                FalcoMessage(
                    severity=severity,
                    message=code["message"],
                    file=current.path,
                    line=at if at is not None and at > 0 else None,
                    item=item,
                    code=code["code"],
                )
            )
            locs = []
    return files
