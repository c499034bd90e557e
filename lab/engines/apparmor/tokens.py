"""Reading tokens for the grammar: lookahead, expectations, located errors, rule text."""

from __future__ import annotations

from lab.engines.apparmor.errors import ProfileError
from lab.engines.apparmor.lexer import IncludeHook, Lexer, Token
from lab.engines.apparmor.model import Source


class TokenStream:
    """The lexer's tokens with lookahead, and errors in bison's words
    ("syntax error, unexpected TOK_ID, expecting TOK_MODE")."""

    def __init__(self, text: str, file: str, include_hook: IncludeHook | None = None) -> None:
        self.lx = Lexer(text, file, include_hook)
        self.file = file
        self.ahead: list[Token | None] = []
        self.last: Token | None = None

    def peek(self, k: int = 0) -> Token | None:
        while len(self.ahead) <= k:
            self.ahead.append(self.lx.next())
        return self.ahead[k]

    def kind(self, k: int = 0) -> str:
        tok = self.peek(k)
        return tok.kind if tok is not None else "EOF"

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise self.syntax_error()
        self.ahead.pop(0)
        self.last = tok
        return tok

    def expect(self, *kinds: str) -> Token:
        if self.kind() not in kinds:
            raise self.syntax_error(*kinds)
        return self.take()

    def where(self) -> tuple[str, int]:
        tok = self.peek()
        if tok is not None:
            return tok.file, tok.line
        buf = self.lx.buffers[0]
        return buf.file, buf.line

    def syntax_error(self, *expecting: str) -> ProfileError:
        tok = self.peek()
        got = "end of file" if tok is None else tok.kind
        msg = f"syntax error, unexpected {got}"
        if expecting:
            names = ["end of file" if e == "EOF" else e for e in expecting]
            msg += ", expecting " + " or ".join(names)
        file, line = self.where()
        return ProfileError(msg, file=file, line=line)

    def fail(self, message: str, tok: Token | None = None) -> ProfileError:
        if tok is None:
            tok = self.last
        if tok is None:
            file, line = self.where()
        else:
            file, line = tok.file, tok.line
        return ProfileError(message, file=file, line=line)

    def located(self, err: ProfileError, tok: Token | None) -> ProfileError:
        if err.line is None and tok is not None:
            err.file, err.line = tok.file, tok.line
        return err

    def source(self, first: Token, last: Token | None = None) -> Source:
        last = last or self.last or first
        text = self.lx.texts.get(first.file, "")
        if last.file == first.file and last.end >= first.start:
            snippet = text[first.start:last.end]
        else:
            snippet = text[first.start:first.end]
        return Source(first.file, first.line, " ".join(snippet.split()))

    # -- file level ----------------------------------------------------------------
