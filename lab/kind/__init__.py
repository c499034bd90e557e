"""The kind backend: real clusters on the learner's machine (config, context guard, doctor)."""
