"""Conditional velocity models v(x_t, t, ŷ) for the flow receiver."""
from jscgc.generators.mlp import MLPVelocity

__all__ = ["MLPVelocity"]
