"""Field transformers: tolower, toupper, b64, basename, len (libs' sinsp_filter_transformer).

Type rules, as upstream: tolower/toupper/basename take string types and keep them;
b64 takes CHARBUF or BYTEBUF and keeps it; len takes strings and buffers (gives
UINT64) or any list (gives its size as UINT64, no longer a list). String
transformers apply to each item of a list field. A b64 value that does not decode
makes the field unavailable for that event.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Any

from lab.engines.falco.condition.types import STRING_TYPES

TRANSFORMERS = ("tolower", "toupper", "b64", "basename", "len")

_LOWER = {i: i + 32 for i in range(ord("A"), ord("Z") + 1)}
_UPPER = {i + 32: i for i in range(ord("A"), ord("Z") + 1)}


def transform_type(name: str, ftype: str, is_list: bool) -> tuple[str, bool] | None:
    """The (type, is_list) a transformer gives, or None when it refuses the input."""
    if name in ("tolower", "toupper", "basename"):
        return (ftype, is_list) if ftype in STRING_TYPES else None
    if name == "b64":
        return (ftype, is_list) if ftype in ("CHARBUF", "BYTEBUF") else None
    if name == "len":
        if is_list:
            return "UINT64", False
        return ("UINT64", False) if ftype in STRING_TYPES or ftype == "BYTEBUF" else None
    return None


def _ascii_lower(s: str) -> str:
    # C toupper/tolower in the C locale only touch ASCII letters
    return s.lower() if s.isascii() else s.translate(_LOWER)


def _ascii_upper(s: str) -> str:
    return s.upper() if s.isascii() else s.translate(_UPPER)


def _basename(s: str) -> str:
    return s[s.rfind("/") + 1:]


def _b64(value: Any) -> Any:
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
    text = raw.rstrip(b"=")
    if len(text) % 4 == 1:
        return None
    try:
        decoded = binascii.a2b_base64(text + b"=" * (-len(text) % 4), strict_mode=True)
    except binascii.Error:
        return None
    if isinstance(value, bytes):
        return decoded
    # a CHARBUF result is a C string: it ends at the first NUL
    return decoded.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _len(value: Any) -> int:
    if isinstance(value, bytes):
        return len(value)
    text = value.split("\0", 1)[0]
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogateescape"))


_SCALAR: dict[str, Callable[[Any], Any]] = {
    "tolower": _ascii_lower, "toupper": _ascii_upper, "basename": _basename, "b64": _b64,
}


def value_function(name: str, is_list: bool) -> Callable[[Any], Any]:
    """A function from an extracted value (never None) to the transformed value or None."""
    if name == "len":
        return len if is_list else _len
    fn = _SCALAR[name]
    if not is_list:
        return fn

    def each(values: Any) -> Any:
        out = [fn(v) for v in values]
        return None if any(v is None for v in out) else out

    return each
