"""Falco's condition language: parse text to an AST, compile an AST to a predicate."""
