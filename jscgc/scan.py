"""The selective scan of Mamba (S6), in pure PyTorch and through mamba-ssm's CUDA kernel.

For every channel d and state n the scan runs the linear recurrence (Gu & Dao 2023, Alg. 2)::

    h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t u_t,        y_t = <C_t, h_t> + D u_t,

with inputs u, Δ of shape (batch, D, L), A (D, N), B and C (batch, G, N, L) shared by D/G
channels each (G = 1 may be given as (batch, N, L)). Same signature as mamba-ssm's
``selective_scan_fn``.

Why hand-written: mamba-ssm ships only CUDA kernels (and no wheel for the CPU or GPU images here),
so the package needs an exact PyTorch scan everywhere else. :func:`selective_scan_torch` evaluates
the recurrence in closed form inside chunks of 16 steps (cumulative sums of the log-decay) and
carries the state across chunks: L/16 Python steps instead of L. :func:`selective_scan_reference`
is the straightforward loop over time, kept for tests and ``bench/scan.py``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["selective_scan", "selective_scan_torch", "selective_scan_reference", "mamba_ssm_available"]


def _prepare(u, delta, A, B, C, delta_bias, delta_softplus):
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(f"selective scan: u and delta must both be (batch, D, L), got "
                         f"{tuple(u.shape)} and {tuple(delta.shape)}")
    B, C = _grouped(u, A, B, C)
    d, g = u.shape[1], B.shape[1]
    if delta_bias is not None:
        delta = delta + delta_bias[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    rep = d // g
    B = B.repeat_interleave(rep, dim=1)          # (batch, D, N, L)
    C = C.repeat_interleave(rep, dim=1)
    return delta, B, C


def selective_scan_reference(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    """The recurrence as a loop over time (float64-friendly; for tests). Returns y (batch, D, L)."""
    delta, B, C = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for t in range(u.shape[2]):
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[..., None] * B[..., t]
        ys.append((h * C[..., t]).sum(-1))
    y = torch.stack(ys, dim=-1)
    return y + D[None, :, None] * u if D is not None else y


def selective_scan_torch(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False,
                         chunk: int | None = None):
    """Chunked closed form of the scan: vectorised inside a chunk, a loop over L/chunk chunks.

    Inside a chunk, with S_t = Σ_{s≤t} Δ_s A the log-decay since the chunk start and b_t = Δ_t B_t u_t,
    h_t = e^{S_t} (h_start + Σ_{s≤t} e^{−S_s} b_s): one cumulative sum replaces the time loop, and
    working on one chunk at a time keeps the (batch, D, N, chunk) tensors small. The exponents are
    centred on m, the middle of the range of S and 0 in the chunk: h_t = e^{S_t − m} (e^{m} h_start +
    Σ_{s≤t} e^{m − S_s} b_s), so every factor, and every factor of the backward pass, lies within
    e^{±R/2} for that range's width R. A chunk with R < 80 (Mamba's initial Δ·|A| ≤ 1.6 per step
    gives R ≤ 26 at chunk 16) runs in float32, where e^{±40} is far from overflow and underflow; a
    wider one runs in float64. Per-step log-decays below −20 (a factor < 2·10⁻⁹) are clamped to −20.
    Gradients are checked against a float64 loop in tests/test_scan_encoders.py. ``chunk`` defaults to
    16 on the CPU (cache-sized) and 64 on a GPU (fewer launches). Returns y (batch, D, L)."""
    chunk = chunk or (64 if u.is_cuda else 16)
    if delta_bias is not None:
        delta = delta + delta_bias[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(f"selective scan: u and delta must both be (batch, D, L), got "
                         f"{tuple(u.shape)} and {tuple(delta.shape)}")
    B, C = _grouped(u, A, B, C)
    b, d, length = u.shape
    g, n = B.shape[1], A.shape[1]
    A4 = A.view(1, g, d // g, n, 1)
    bu = (delta * u).view(b, g, d // g, 1, length)
    h = u.new_zeros(b, g, d // g, n)
    ys = []
    for c0 in range(0, length, chunk):
        sl = slice(c0, c0 + chunk)
        S = (delta[..., sl].view(b, g, d // g, 1, -1) * A4).clamp(min=-20.0).cumsum(-1)
        inp = bu[..., sl] * B[:, :, None, :, sl]                  # (b, G, D/G, N, T)
        lo = S.detach().amin(-1, keepdim=True).clamp(max=0.0)      # the range of S with 0 (the start)
        hi = S.detach().amax(-1, keepdim=True).clamp(min=0.0)
        if S.dtype == torch.float32 and float((hi - lo).max()) > 80.0:
            S, inp, h_in = S.double(), inp.double(), h.double()
        else:
            h_in = h
        # Not e^{S} · cumsum(inp / e^{S}): that quotient's backward forms (inp / e^{S}) / e^{S}, which
        # overflows float32 once |S| > 44, so the gradient was inf/NaN under a finite loss (MambaJSCC's
        # skipped steps in the `small` benchmark). Centring keeps both passes within e^{±R/2}.
        m = ((lo + hi) / 2).to(S.dtype)
        states = torch.exp(S - m) * (torch.cumsum(inp * torch.exp(m - S), dim=-1) + h_in[..., None] * torch.exp(m))
        h = states[..., -1].to(u.dtype)
        ys.append((states.to(u.dtype) * C[:, :, None, :, sl]).sum(3))
    y = torch.cat(ys, dim=-1).reshape(b, d, length)
    return y + D[None, :, None] * u if D is not None else y


def _grouped(u, A, B, C):
    """Check shapes (as :func:`_prepare`) and return B, C as (batch, G, N, L) without repeating."""
    b, d, length = u.shape
    n = A.shape[1] if A.dim() == 2 else -1
    B = B[:, None] if B.dim() == 3 else B
    C = C[:, None] if C.dim() == 3 else C
    g = B.shape[1]
    if A.shape[0] != d or d % g or B.shape != (b, g, n, length) or C.shape != (b, g, n, length):
        raise ValueError(f"selective scan: expected A (D={d}, N) and B, C (batch, G, N, L={length}) with G "
                         f"dividing D, got {tuple(A.shape)}, {tuple(B.shape)} and {tuple(C.shape)}")
    return B, C


def mamba_ssm_available() -> bool:
    """True when mamba-ssm's CUDA selective-scan kernel can be imported."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # noqa: F401
    except Exception:  # ImportError, or a broken CUDA extension
        return False
    return torch.cuda.is_available()


def selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False,
                   backend: str = "auto"):
    """Dispatch: mamba-ssm's kernel for CUDA tensors when importable ("auto"/"mamba_ssm"), else
    :func:`selective_scan_torch` ("torch"). Returns y (batch, D, L) in u's dtype."""
    if backend not in ("auto", "torch", "mamba_ssm"):
        raise ValueError(f"selective scan backend: expected 'auto', 'torch' or 'mamba_ssm', got {backend!r}")
    use_kernel = backend == "mamba_ssm" or (backend == "auto" and u.is_cuda and mamba_ssm_available())
    if use_kernel:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

        B = B[:, None] if B.dim() == 3 else B
        C = C[:, None] if C.dim() == 3 else C
        return selective_scan_fn(u.contiguous(), delta.contiguous(), A.contiguous(), B.contiguous(),
                                 C.contiguous(), D, None, delta_bias, delta_softplus)
    out = selective_scan_torch(u.float(), delta.float(), A.float(), B.float(), C.float(),
                               None if D is None else D.float(),
                               None if delta_bias is None else delta_bias.float(), delta_softplus)
    return out.to(u.dtype)
