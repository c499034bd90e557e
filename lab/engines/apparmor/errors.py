"""The AppArmor engine's one error type: a message with a place."""

from __future__ import annotations

from lab.errors import LabError


class ProfileError(LabError):
    """A profile that does not lex, parse or compile.

    `message` follows apparmor_parser's wording where there is one, so the learner
    sees the same words the real compiler would print; `file`/`line` say where
    (the file the lexer was in, which may be an included file); `item` names the
    profile when known.
    """


class AccessError(LabError):
    """An access request the engine cannot read ("r /etc/shadow", "capability x" ...)."""
