"""apimachinery's JSON decoding of YAMLToJSON's values into Go structs, with Go's error text.

The values are :class:`~lab.engines.audit.goyaml.Located`, so every error has a
line. Fields are visited in JSON order: sorted keys when json.Marshal wrote the
JSON from YAML, document order for a file that already was JSON.
"""

from __future__ import annotations

from typing import Any, NoReturn

from lab.engines.audit.gotext import go_quote, json_type
from lab.engines.audit.goyaml import Located


class DecodeError(Exception):
    """An error of the decoding codec (serializer, scheme, encoding/json) and its line."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


_FIND_KIND = ('struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
              'Kind string "json:\\"kind,omitempty\\"" }')


def find_kind_error(value: Any) -> str:
    """SimpleMetaFactory.Interpret's error for a document that is no JSON object."""
    return ("couldn't get version/kind; json parse error: json: cannot unmarshal "
            f"{json_type(value)} into Go value of type {_FIND_KIND}")


def type_error(value: Any, struct: str, stack: str, go_type: str) -> str:
    """encoding/json's UnmarshalTypeError for the field ``struct.stack``."""
    return (f"json: cannot unmarshal {json_type(value)} into Go struct field "
            f"{struct}.{stack} of type {go_type}")


def interpret(top: Located, ordered: bool) -> tuple[str, str, str, int | None]:
    """(group, version, kind, line): SimpleMetaFactory.Interpret, then ParseGroupVersion."""
    found: dict[str, Located] = {}
    if top.value is not None:
        if not isinstance(top.value, dict):
            raise DecodeError(find_kind_error(top.value), top.line)
        items = top.value.items() if ordered else sorted(top.value.items())
        for key, v in items:  # encoding/json matches field names case-insensitively
            name = {"apiversion": "apiVersion", "kind": "kind"}.get(key.casefold())
            if name is None or v.value is None:
                continue
            if not isinstance(v.value, str):
                raise DecodeError("couldn't get version/kind; json parse error: json: cannot "
                                  f"unmarshal {json_type(v.value)} into Go struct field "
                                  f".{name} of type string", v.line)
            found[name] = v
    api_version = found["apiVersion"].value if "apiVersion" in found else ""
    kind = found["kind"].value if "kind" in found else ""
    line = (found.get("kind") or found.get("apiVersion") or top).line
    if api_version in ("", "/"):
        group, version = "", ""
    elif api_version.count("/") == 0:
        group, version = "", api_version
    elif api_version.count("/") == 1:
        group, version = api_version.split("/")
    else:
        raise DecodeError(f"unexpected GroupVersion string: {api_version}",
                          found["apiVersion"].line)
    return group, version, kind, line


class StructDecoder:
    """encoding/json's checks for the fields of a typed struct.

    The first type error is raised (Unmarshal reports the first one); unknown
    fields are collected, as the strict decoder would complain about them.
    """

    def __init__(self, ordered: bool) -> None:
        self.ordered = ordered
        self.unknown: list[str] = []

    def items(self, d: dict[str, Located]) -> list[tuple[str, Located]]:
        return list(d.items()) if self.ordered else sorted(d.items())

    def unknown_field(self, path: str) -> None:
        self.unknown.append(f"unknown field {go_quote(path)}")

    @staticmethod
    def fail(v: Located, go_type: str, struct: str, stack: str) -> NoReturn:
        raise DecodeError(type_error(v.value, struct, stack, go_type), v.line)

    def string(self, v: Located, go_type: str, struct: str, stack: str) -> str:
        if v.value is None or isinstance(v.value, str):
            return v.value or ""
        self.fail(v, go_type, struct, stack)

    def strings(self, v: Located, elem: str, struct: str, stack: str) -> tuple[str, ...]:
        return tuple(self.string(item, elem, struct, stack)
                     for item in self.array(v, "[]" + elem, struct, stack))

    def boolean(self, v: Located, struct: str, stack: str) -> bool | None:
        if v.value is None or isinstance(v.value, bool):
            return v.value
        self.fail(v, "bool", struct, stack)

    def array(self, v: Located, go_type: str, struct: str, stack: str) -> list[Located]:
        """A JSON array's items (null: none)."""
        if v.value is not None and not isinstance(v.value, list):
            self.fail(v, go_type, struct, stack)
        return v.value or []

    def object(self, v: Located, go_type: str, struct: str, stack: str) -> dict[str, Any] | None:
        """A JSON object's fields (null: None)."""
        if v.value is not None and not isinstance(v.value, dict):
            self.fail(v, go_type, struct, stack)
        return v.value
