"""falco.yaml, read the way Falco 0.44 reads the keys that decide what it alerts and where.

Keys read: rules_files (or the deprecated rules_file), json_output,
json_include_output_property, json_include_tags_property,
json_include_message_property, json_include_output_fields_property, priority,
rule_matching, stdout_output.enabled, file_output.{enabled,keep_alive,filename},
time_format_iso_8601. Other keys are ignored, as the lab has no use for them; a
value Falco cannot convert stops Falco, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from lab.engines.falco.engine import PRIORITIES
from lab.engines.falco.priorities import parse_priority
from lab.errors import LabError
from lab.yamlsafe import Document, parse_all

CONFIG_PATH = "/etc/falco/falco.yaml"
# yaml-cpp's conversions to bool.
_TRUE = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}
_FALSE = {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}
# Keys that change detection but that the lab's Falco does not model.
_UNMODELLED = {
    "rules": "enabling or disabling rules by name or tag",
    "append_output": "extra output fields",
    "config_files": "included configuration files",
}


class FalcoConfigError(LabError):
    """falco.yaml stops Falco at start-up."""


@dataclass(frozen=True)
class FileOutput:
    filename: str
    keep_alive: bool = False


@dataclass(frozen=True)
class FalcoConfig:
    rules_files: list[str] = field(default_factory=list)  # as written: files or folders
    json_output: bool = False
    json_include_output_property: bool = True
    json_include_tags_property: bool = True
    json_include_message_property: bool = False
    json_include_output_fields_property: bool = True
    priority: str = "Debug"  # the minimum, as Falco prints priorities
    rule_matching: Literal["first", "all"] = "first"
    stdout_output: bool = False
    file_output: FileOutput | None = None
    time_format_iso_8601: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def outputs(self) -> list[str]:
        out = ["stdout"] if self.stdout_output else []
        return out + ([f"file {self.file_output.filename}"] if self.file_output else [])


class _Reader:
    def __init__(self, doc: Document, source: str) -> None:
        self.data: dict[str, Any] = doc.data if isinstance(doc.data, dict) else {}
        self.doc = doc
        self.source = source

    def _node(self, key: str) -> tuple[Any, tuple[str, ...]]:
        node: Any = self.data
        path = tuple(key.split("."))
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return None, path
            node = node[part]
        return node, path

    def fail(self, path: tuple[str, ...], message: str) -> FalcoConfigError:
        return FalcoConfigError(
            message, file=self.source, line=self.doc.line_of(path), item=".".join(path)
        )

    def boolean(self, key: str, default: bool) -> bool:
        value, path = self._node(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in _TRUE | _FALSE:
            return value in _TRUE
        raise self.fail(path, f"yaml-cpp: bad conversion: {_show(value)} is not true or false")

    def string(self, key: str, default: str) -> str:
        value, path = self._node(key)
        if value is None:
            return default
        if isinstance(value, dict | list):
            kind = "a mapping" if isinstance(value, dict) else "a list"
            raise self.fail(path, f"yaml-cpp: bad conversion: expected a string, not {kind}")
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def sequence(self, key: str) -> list[str]:
        value, path = self._node(key)
        items = value if isinstance(value, list) else [value]
        out = []
        for item in items:
            if isinstance(item, dict | list) or item is None:
                raise self.fail(path, "yaml-cpp: bad conversion: expected a list of paths")
            out.append(str(item))
        return out


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def priority_name(text: str) -> str | None:
    """Falco's priority name for a case-insensitive one ("info" is Informational)."""
    index = parse_priority(text)
    return None if index is None else PRIORITIES[index]


def parse_config(raw: bytes, source: str = CONFIG_PATH) -> FalcoConfig:
    """The configuration in `raw`, or FalcoConfigError with Falco's reason and the line."""
    try:
        docs = [d for d in parse_all(raw, source) if d.data is not None]
    except LabError as e:
        raise FalcoConfigError(
            f"Cannot read config file ({source}): {e.message}", file=source, line=e.line
        ) from None
    if len(docs) > 1:
        raise FalcoConfigError(
            f"Cannot read config file ({source}): expected one YAML document", file=source
        )
    doc = docs[0] if docs else Document(None, source)
    if doc.data is not None and not isinstance(doc.data, dict):
        raise FalcoConfigError(
            f"Cannot read config file ({source}): the configuration must be a YAML mapping",
            file=source,
            line=1,
        )
    r = _Reader(doc, source)
    warnings: list[str] = []
    has_plural, has_singular = "rules_files" in r.data, "rules_file" in r.data
    if has_plural and has_singular:
        raise r.fail(
            ("rules_file",),
            f"Error reading config file ({source}): both 'rules_files' and 'rules_file' keys set",
        )
    rules_files: list[str] = []
    if has_plural:
        rules_files = r.sequence("rules_files")
    elif has_singular:
        rules_files = r.sequence("rules_file")
        warnings.append(
            "Using deprecated config key 'rules_file' (singular form). "
            "Please use new 'rules_files' config key (plural form)."
        )
    file_output = None
    if r.boolean("file_output.enabled", False):
        filename = r.string("file_output.filename", "")
        if not filename:
            raise r.fail(
                ("file_output",),
                f"Error reading config file ({source}): file output enabled but no filename "
                "in configuration block",
            )
        file_output = FileOutput(filename, r.boolean("file_output.keep_alive", False))
    matching = r.string("rule_matching", "first")
    if matching not in ("first", "all"):
        raise r.fail(
            ("rule_matching",),
            f'Unknown rule matching strategy "{matching}"--must be one of first, all',
        )
    priority_text = r.string("priority", "debug")
    priority = priority_name(priority_text)
    if priority is None:
        raise r.fail(
            ("priority",),
            f'Unknown priority "{priority_text}"--must be one of emergency, alert, critical, '
            "error, warning, notice, informational, debug",
        )
    for key, what in _UNMODELLED.items():
        if r.data.get(key):
            warnings.append(f"the lab's Falco ignores `{key}` in falco.yaml ({what})")
    return FalcoConfig(
        rules_files=rules_files,
        json_output=r.boolean("json_output", False),
        json_include_output_property=r.boolean("json_include_output_property", True),
        json_include_tags_property=r.boolean("json_include_tags_property", True),
        json_include_message_property=r.boolean("json_include_message_property", False),
        json_include_output_fields_property=r.boolean("json_include_output_fields_property", True),
        priority=priority,
        rule_matching="all" if matching == "all" else "first",
        stdout_output=r.boolean("stdout_output.enabled", False),
        file_output=file_output,
        time_format_iso_8601=r.boolean("time_format_iso_8601", False),
        warnings=warnings,
    )
