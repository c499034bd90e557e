"""Falco's rule engine, in Falco's own stages.

reader (YAML -> items with lines) -> collector (load order, override/append)
-> compiler (lists, macros, exceptions -> one condition per rule)
-> condition parser / evaluator -> output formatter.

Follows Falco 0.44 (libs 0.25). Knows nothing of scenarios or backends.
"""
