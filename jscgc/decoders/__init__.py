"""Deterministic decoders trained with MSE: the reconstruction-paradigm reference."""
from jscgc.decoders.mlp import MLPDecoder

__all__ = ["MLPDecoder"]
