"""cks-lab: a training lab for the runtime-security half of the CKS exam."""

__version__ = "0.1.0"
