"""Output-aware index choice for the dithered scalar quantizers: error feedback (GPTQ).

The decoder of scalar / scalar_channel reads integers q and computes w_hat = (q - d) * s
(FORMAT.md 4.1, 4.8); which integer the encoder writes is its own choice. Rounding each
weight on its own, round(w / s + d), gives white noise of power s^2 / 12. Choosing the
indices one input column at a time and pushing each column's error into the columns not
yet quantized, weighted by the inverse Gram of the layer's input (Frantar et al., "GPTQ",
after Optimal Brain Surgeon), shapes the error away from the directions the inputs excite:
the layer's output error ||X (W - W_hat)||^2 falls by several dB at the same step and
nearly the same index entropy. The dither stays: each column is rounded with its own.

    layer rows W [O, K] (graph.layers.axis_order; O = gc groups of R rows), steps s [O]
    dither D [O, K] (the tensor's dither in the same layout), Gram H [gc, K, K]
    H += damp * mean(diag H) * I;  U = upper Cholesky factor of H^-1 (H^-1 = U^T U)
    columns in decreasing diag(H) per group ("act order"), blocks of BLOCK columns:
        q_j   = round(w_j / s + d_j)                  [R] per group
        e_j   = (w_j - (q_j - d_j) * s) / U_jj
        w_k  -= e_j * U_jk           for the later columns k of the block (then the rest, lazily)
    -> q int64 [O, K]

With a rate term (lam > 0, rate-distortion-optimised quantization): q_j is the one of
floor / ceil of w_j / s + d_j with the lower cost

        sens_j * ((w_j - (q - d_j) * s) / s)^2  +  lam * bits(q)

sens_j = U_jj^-2 / mean(U^-2) (the output error one unit of this column's error costs,
OBS), bits(q) = -log2 p(q) of the tensor's own index histogram from a first pass without
the rate term (Laplace-smoothed), lam in squared steps per bit. The error still feeds the
later columns, so a coarser index here is partly paid back there.

Pure functions on arrays; fit.candidates turns them into allocation candidates.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

DAMP = 0.01  # of the mean diagonal of H, added to its diagonal (GPTQ's default)
BLOCK = 128  # columns updated eagerly; the rest once per block (one matrix product)
_MAX_INDEX = (1 << 31) - 1


def inverse_factor(gram: np.ndarray, damp: float = DAMP) -> np.ndarray:
    """gram [gc, K, K] (symmetric, PSD) -> U [gc, K, K] upper triangular, U^T U = (H + damp)^-1.

    Columns whose input never excites (zero diagonal) get a unit diagonal: their error is
    invisible to the layer's output, so feedback never moves weight into or out of them."""
    h = np.array(gram, dtype=np.float64)  # [gc, K, K]
    k = h.shape[-1]
    idx = np.arange(k)
    diag = h[:, idx, idx]  # [gc, K]
    dead = diag <= 0
    h[:, idx, idx] = np.where(dead, 1.0, diag)
    mean = np.maximum(np.mean(h[:, idx, idx], axis=1), 1e-300)  # [gc]
    for attempt in range(6):
        try:
            hd = h.copy()
            hd[:, idx, idx] += (damp * 10.0**attempt) * mean[:, None]
            lower = np.linalg.cholesky(hd)  # [gc, K, K], H = L L^T
            eye = np.broadcast_to(np.eye(k), hd.shape)
            linv = np.linalg.solve(lower, eye)  # L^-1 (lower): H^-1 = L^-T L^-1
            hinv = np.matmul(linv.transpose(0, 2, 1), linv)  # [gc, K, K]
            return np.linalg.cholesky(hinv).transpose(0, 2, 1)  # upper U with U^T U = H^-1
        except np.linalg.LinAlgError:
            continue
    raise ConfigError("the layer's input Gram is not positive definite even with 1e4 x damping")


def prepare(gram: np.ndarray, damp: float = DAMP, act_order: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """gram [gc, K, K] -> (perm int [gc, K], U [gc, K, K]): the column order (decreasing
    diag H per group, or the consumer's) and the inverse factor of the permuted Gram. They
    do not depend on the step: one per layer for every step tried."""
    gc, k, _ = gram.shape
    if act_order:
        perm = np.argsort(-np.diagonal(gram, axis1=1, axis2=2), axis=1, kind="stable")  # [gc, K]
    else:
        perm = np.tile(np.arange(k), (gc, 1))
    g_idx = np.arange(gc)[:, None, None]
    return perm, inverse_factor(gram[g_idx, perm[:, :, None], perm[:, None, :]], damp)


def index_bits(q: np.ndarray) -> tuple[int, np.ndarray]:
    """q int [...] -> (lo, bits [span + 2]): -log2 p of each index value lo-1 .. hi+1 of the
    histogram of q, add-one smoothed (so neighbours of the range cost the most)."""
    flat = np.asarray(q, dtype=np.int64).reshape(-1)
    lo = int(flat.min(initial=0)) - 1
    counts = np.bincount(flat - lo, minlength=int(flat.max(initial=0)) - lo + 2).astype(np.float64) + 1.0
    return lo, -np.log2(counts / counts.sum())


def columns(wt: np.ndarray, dt: np.ndarray, perm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """wt, dt [O, K], perm [gc, K] -> (w, d) float64 [gc, K, R]: the weights and dither in
    the processing order, column-major (each column's R rows contiguous). The same for
    every step of a layer: callers trying several steps make it once (``cols``)."""
    gc, k = perm.shape
    r = wt.shape[0] // gc
    w = np.asarray(wt, dtype=np.float64).reshape(gc, r, k)
    d = np.asarray(dt, dtype=np.float64).reshape(gc, r, k)
    w = np.ascontiguousarray(np.take_along_axis(w, perm[:, None, :], axis=2).transpose(0, 2, 1))
    d = np.ascontiguousarray(np.take_along_axis(d, perm[:, None, :], axis=2).transpose(0, 2, 1))
    return w, d


def feedback_indices(wt: np.ndarray, steps: np.ndarray, dt: np.ndarray, gram: np.ndarray | None = None,
                     prepared: tuple[np.ndarray, np.ndarray] | None = None, lam: float = 0.0,
                     first: np.ndarray | None = None,
                     cols: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """wt [O, K] float, steps [O] (>0), dt [O, K] dither, gram [gc, K, K] -> q int64 [O, K].

    ``prepared``: prepare(gram) when the caller has it (else computed from ``gram``).
    ``lam`` > 0: the rate term of the module docstring, its histogram from ``first`` (the
    indices of this call with lam = 0, computed when not given). ``cols``: columns(wt, dt,
    perm) when the caller has it. Raises ConfigError when an index would not fit 32 bits."""
    prepared = prepared if prepared is not None else prepare(gram)
    if lam > 0:
        if first is None:
            first = feedback_indices(wt, steps, dt, gram, prepared, cols=cols)
        return _feedback_pass(wt, steps, dt, prepared, lam, index_bits(first), cols)
    return _feedback_pass(wt, steps, dt, prepared, 0.0, None, cols)


def _feedback_pass(wt: np.ndarray, steps: np.ndarray, dt: np.ndarray, prepared: tuple[np.ndarray, np.ndarray],
                   lam: float, rate: tuple[int, np.ndarray] | None,
                   cols: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    perm, u = prepared
    o, k = wt.shape
    gc = perm.shape[0]
    if o % gc or u.shape != (gc, k, k):
        raise ConfigError(f"rows {wt.shape} do not match the Gram {u.shape}")
    r = o // gc
    s = np.asarray(steps, dtype=np.float64).reshape(gc, r)  # [gc, R]
    # column-major state [gc, K, R]: each column's R rows contiguous (the loop reads and
    # updates whole columns; row-major strides made it memory-bound)
    if cols is None:
        w, d = columns(wt, dt, perm)
    else:
        w, d = cols[0].copy(), cols[1]  # w is updated in place; d is only read
    q = np.empty((gc, k, r), dtype=np.float64)
    if rate is not None:
        lo, bits = rate
        inv = 1.0 / np.square(np.diagonal(u, axis1=1, axis2=2))  # [gc, K]
        sens = inv / np.mean(inv, axis=1, keepdims=True)  # [gc, K]
        top = bits.size - 1

        def cost_bits(idx: np.ndarray) -> np.ndarray:
            return bits[np.clip(idx - lo, 0, top).astype(np.int64)]
    for b0 in range(0, k, BLOCK):
        b1 = min(k, b0 + BLOCK)
        wb = w[:, b0:b1, :]  # a view: eager updates land in w
        err = np.empty((gc, b1 - b0, r))
        for j in range(b1 - b0):
            c = b0 + j
            t = wb[:, j, :] / s + d[:, c, :]  # [gc, R]
            if rate is None:
                qj = np.rint(t)
            else:
                fl = np.floor(t)
                frac = t - fl
                sj = sens[:, c][:, None]
                low = sj * frac * frac + lam * cost_bits(fl)
                high = sj * (1.0 - frac) ** 2 + lam * cost_bits(fl + 1.0)
                qj = np.where(high < low, fl + 1.0, fl)
            q[:, c, :] = qj
            ej = (wb[:, j, :] - (qj - d[:, c, :]) * s) / u[:, c, c][:, None]  # [gc, R]
            err[:, j, :] = ej
            if j + 1 < b1 - b0:
                wb[:, j + 1:, :] -= u[:, c, c + 1:b1][:, :, None] * ej[:, None, :]
        if b1 < k:
            w[:, b1:, :] -= np.matmul(u[:, b0:b1, b1:].transpose(0, 2, 1), err)  # [gc, K - b1, R]
    q = q.transpose(0, 2, 1)  # [gc, R, K]
    if not (np.all(np.isfinite(q)) and float(np.abs(q).max(initial=0.0)) <= _MAX_INDEX):
        raise ConfigError("error feedback: indices overflow 32 bits (the step is too small)")
    out = np.empty_like(q)
    np.put_along_axis(out, perm[:, None, :], q, axis=2)  # back to the consumer's column order
    return out.reshape(o, k).astype(np.int64)
