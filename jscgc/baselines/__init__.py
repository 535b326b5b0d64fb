"""Baselines that need a system of their own: DiffJSCC-style two-stage refinement and NECST.

CJSCC and MambaJSCC (MSE) are :class:`jscgc.system.MSEReconstruction` with other parts; all five
methods are assembled in one registry, :mod:`jscgc.methods`.
"""
from jscgc.baselines.diffjscc import DiffJSCC, as_condition_symbols
from jscgc.baselines.necst import NECST, vimco_surrogate

__all__ = ["DiffJSCC", "as_condition_symbols", "NECST", "vimco_surrogate"]
