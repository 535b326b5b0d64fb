"""Encoders: source -> unit-power complex channel symbols (B, n, 2)."""
from jscgc.encoders.mlp import MLPEncoder

__all__ = ["MLPEncoder"]
