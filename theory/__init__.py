"""Numerical checks of JSCGC's Theorem 1 (Wu et al. 2026) on data of known intrinsic dimension.

``bound`` (the published δ* and rigorous finite-P_e / continuum-Fano versions), ``manifolds``
(S^d, flat T^d, swiss roll, Fibonacci codebooks), ``covering`` (exact 1/P_max, greedy nets,
fits of C and d), ``mi`` (exact, sandwich, mixture, KSG and InfoNCE estimators; bits),
``dimension`` (Levina–Bickel, TwoNN) and ``derivations`` (sympy checks of the paper's algebra).
See ../shared/THEORY.md for where the published statement is loose.
"""
