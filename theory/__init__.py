"""Numerical checks of JSCGC's Theorem 1 (Wu et al. 2026) on data of known intrinsic dimension.

``bound`` (the published δ* and rigorous finite-P_e / continuum-Fano versions), ``manifolds``
(S^d, flat T^d, swiss roll, Fibonacci codebooks), ``covering`` (exact 1/P_max, greedy nets,
fits of C and d), ``mi`` (exact, sandwich, mixture, KSG and InfoNCE estimators; bits), ``bits`` (bit codes
over a BSC or BEC),
``dimension`` (Levina–Bickel, TwoNN), ``derivations`` (sympy checks of the paper's algebra),
``tasks`` (the toy sources of known d with exact or upper-bounded P_max, their posteriors, and the MAP
negative control), ``bayes`` (Bayes-optimal receivers for a known code map: exact over a codebook, SNIS
on a sphere) and ``check`` (empirical δ with its CI, the valid δ* bounds, MI intervals and the gaps to
the Bayes-optimal receivers for a measured system).
See docs/theory.md, 'Where Theorem 1 is loose', for where the published statement is loose.
"""
