"""Fitting a product quantizer: codebook + assignments for one weight tensor.

    w [*shape] --transpose(order), cut--> blocks W [B, d]   (row o of the layer = G blocks)
    activations X [N, K] (K = G*d, the consumer's input run) --> Grams H [G, d, d]
        H[g] = X[:, g*d:(g+1)*d]^T X[:, g*d:(g+1)*d]   (block-diagonal of X^T X)
    EM on sum_b (w_b - c_{a(b)})^T H[g(b)] (w_b - c_{a(b)})  (= ||X (W - W_hat)||^2
        without the cross-terms between groups of one output):
      E-step: a(b) = argmin_c  c^T H[g] c - 2 w_b^T H[g] c
      M-step: c = (sum_{b in c} H[g(b)])^-1 sum_{b in c} H[g(b)] w_b   (least squares)
      empty clusters: split the most populated one (centroid +- a small perturbation)
    --> centroids rounded to float16, a last E-step on the rounded values --> PQFit

Without activations every H[g] is the identity and this is plain k-means on the weights
("And the Bit Goes Down", Stock et al. 2020, minimise the output error of each layer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..graph.layers import axis_order, layer_type, run_length
from ..quantizers.pq import PQConfig, PQFit, block_count, to_blocks

_CHUNK = 1 << 14  # blocks per distance chunk (bounds memory to _CHUNK * k floats)


# ---- block and codebook sizes (layer types and axis orders: graph.layers) ----------------
def choose_block(d_pref: int, run: int) -> int:
    """d_pref if it divides the run, else the largest divisor of the run in [2, d_pref],
    else d_pref (blocks then straddle outputs and only weight k-means applies)."""
    if run % d_pref == 0:
        return d_pref
    for d in range(min(d_pref, run), 1, -1):
        if run % d == 0:
            return d
    return d_pref


def block_for(config: PQConfig, kind: str, run: int) -> int:
    """The block size of a layer of type ``kind`` (graph.layers.layer_type) whose outputs
    each read ``run`` weights: the configured size for the type (else "other"), fitted to
    the run by choose_block."""
    return choose_block(config.block.get(kind, config.block.get("other", 4)), run)


def choose_k(config: PQConfig, blocks: int) -> int:
    """k, or k_large for layers with many blocks; never more than a quarter of the blocks."""
    k = config.k_large if (config.k_large and blocks >= config.large_min_blocks) else config.k
    return max(1, min(k, blocks // 4))


# ---- EM --------------------------------------------------------------------------------
@dataclass
class EMTrace:
    objective: list[float]  # metric error after each iteration (float64 centroids)
    reseeded: int = 0  # empty clusters re-seeded in all iterations
    output_aware: bool = False


def grams_from_activations(x: np.ndarray, d: int) -> np.ndarray:
    """x [N, K] -> H [G, d, d] with G = K / d: the diagonal d x d blocks of x^T x."""
    n, kdim = x.shape
    if kdim % d:
        raise ConfigError(f"activation width {kdim} is not a multiple of the block size {d}")
    xg = x.reshape(n, kdim // d, d).astype(np.float64)  # [N, G, d]
    return np.einsum("ngi,ngj->gij", xg, xg)  # [G, d, d]


def _assign(blocks: np.ndarray, groups: np.ndarray, c: np.ndarray, h: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """E-step. blocks [B, d], groups int [B], c [k, d], h [G, d, d] or None -> idx [B], cost [B]."""
    idx = np.empty(blocks.shape[0], np.int64)
    cost = np.empty(blocks.shape[0], np.float64)
    if h is None:
        cc = np.einsum("kd,kd->k", c, c)  # [k]
        for s in range(0, blocks.shape[0], _CHUNK):
            w = blocks[s : s + _CHUNK]  # [b, d]
            score = cc[None, :] - 2.0 * (w @ c.T)  # [b, k]
            idx[s : s + _CHUNK] = np.argmin(score, axis=1)
            cost[s : s + _CHUNK] = score[np.arange(w.shape[0]), idx[s : s + _CHUNK]] + np.einsum("bd,bd->b", w, w)
        return idx, cost
    for g in range(h.shape[0]):
        rows = np.flatnonzero(groups == g)
        hc = c @ h[g]  # [k, d]
        chc = np.einsum("kd,kd->k", hc, c)  # [k]
        for s in range(0, rows.size, _CHUNK):
            r = rows[s : s + _CHUNK]
            w = blocks[r]  # [b, d]
            score = chc[None, :] - 2.0 * (w @ hc.T)  # [b, k]
            best = np.argmin(score, axis=1)
            idx[r] = best
            cost[r] = score[np.arange(r.size), best] + np.einsum("bd,de,be->b", w, h[g], w)
    return idx, cost


def _update(blocks: np.ndarray, groups: np.ndarray, idx: np.ndarray, c: np.ndarray, h: np.ndarray | None) -> np.ndarray:
    """M-step: least squares per centroid under the metric; empty centroids keep their value."""
    k, d = c.shape
    counts = np.bincount(idx, minlength=k)  # [k]
    if h is None:
        sums = np.zeros((k, d))
        np.add.at(sums, idx, blocks)
        new = c.copy()
        nz = counts > 0
        new[nz] = sums[nz] / counts[nz, None]
        return new
    g_count = np.zeros((h.shape[0], k))  # [G, k]
    np.add.at(g_count, (groups, idx), 1.0)
    a = np.einsum("gk,gij->kij", g_count, h)  # [k, d, d]
    hw = np.einsum("bi,bij->bj", blocks, h[groups]) if blocks.shape[0] <= (1 << 18) else _hw_chunked(blocks, groups, h)
    r = np.zeros((k, d))
    np.add.at(r, idx, hw)  # [k, d]
    new = c.copy()
    nz = counts > 0
    scale = np.trace(a[nz], axis1=1, axis2=2) / d  # [k']
    ridge = (1e-9 * scale + 1e-30)[:, None, None] * np.eye(d)[None]  # keeps singular metrics solvable
    new[nz] = np.linalg.solve(a[nz] + ridge, r[nz][..., None])[..., 0]
    return new


def _hw_chunked(blocks, groups, h):
    out = np.empty_like(blocks)
    for g in range(h.shape[0]):
        rows = groups == g
        out[rows] = blocks[rows] @ h[g]
    return out


def _reseed(c: np.ndarray, idx: np.ndarray, blocks: np.ndarray, rng: np.random.Generator) -> int:
    """Empty clusters take half of the most populated one: split its centroid in two."""
    k = c.shape[0]
    counts = np.bincount(idx, minlength=k).astype(np.int64)
    empty = np.flatnonzero(counts == 0)
    for e in empty:
        big = int(np.argmax(counts))
        if counts[big] < 2:
            break
        members = blocks[idx == big]  # may be empty when big was itself just split
        spread = members.std(axis=0) if members.shape[0] >= 2 else np.zeros(c.shape[1])  # [d]
        spread = spread + 1e-3 * (np.abs(c[big]).max() + 1e-30)
        eps = 1e-2 * spread * rng.standard_normal(c.shape[1])
        c[e] = c[big] + eps
        c[big] = c[big] - eps
        counts[e] = counts[big] // 2
        counts[big] -= counts[e]
    return int(empty.size)


def fit_blocks(
    blocks: np.ndarray,
    k: int,
    iterations: int,
    seed: int = 0,
    h: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    em_blocks: int | None = None,
) -> tuple[np.ndarray, np.ndarray, EMTrace]:
    """blocks [B, d] -> centroids float16 [k, d], indices [B], trace.

    h [Gt, d, d]: the metric of each block group, groups int [B] the group of each block
    (default b % Gt); h None: plain k-means. em_blocks: EM on a random sample of at most
    this many blocks (fast estimates of large layers), then every block assigned once."""
    blocks = blocks.astype(np.float64)
    nb = blocks.shape[0]
    if groups is None:
        groups = np.arange(nb) % (h.shape[0] if h is not None else 1)  # [B]
    rng = np.random.default_rng(seed)
    if em_blocks is not None and nb > max(em_blocks, 4 * k):
        pick = np.sort(rng.choice(nb, size=max(em_blocks, 4 * k), replace=False))  # [S]
        c16, _, trace = fit_blocks(blocks[pick], k, iterations, seed, h, groups[pick])
        idx, cost = _assign(blocks, groups, c16.astype(np.float64), h)
        trace.objective.append(float(cost.sum()))
        return c16, idx, trace
    k = max(1, min(k, nb))
    c = blocks[rng.choice(nb, size=k, replace=False)].copy()  # [k, d]
    trace = EMTrace(objective=[], output_aware=h is not None)
    # plain k-means first (cheap, a good start for the output-aware metric too)
    warm = iterations if h is None else max(1, iterations // 3)
    for _ in range(warm):
        idx, cost = _assign(blocks, groups, c, None)
        trace.reseeded += _reseed(c, idx, blocks, rng)
        c = _update(blocks, groups, idx, c, None)
        if h is None:
            trace.objective.append(float(cost.sum()))
    if h is not None:
        for _ in range(iterations):
            idx, cost = _assign(blocks, groups, c, h)
            trace.objective.append(float(cost.sum()))
            trace.reseeded += _reseed(c, idx, blocks, rng)
            c = _update(blocks, groups, idx, c, h)
    c16 = _to_half(c)
    idx, cost = _assign(blocks, groups, c16.astype(np.float64), h)
    trace.objective.append(float(cost.sum()))
    return c16, idx, trace


def _to_half(c: np.ndarray) -> np.ndarray:
    c16 = c.astype(np.float16)
    if not np.isfinite(c16).all():
        raise ConfigError("pq centroids overflow float16")
    return c16


# ---- Gram matrices of a layer -> metrics of its blocks -----------------------------------
def block_metrics(gram: np.ndarray, outputs: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """gram [gc, K, K] (per conv group), blocks of d along K of each of ``outputs`` rows ->
    h [gc*G, d, d] (diagonal d x d blocks), groups int [outputs*G] (the metric of each block)."""
    gc, kdim, _ = gram.shape
    if kdim % d or outputs % gc:
        raise ConfigError(f"Gram of width {kdim} / {gc} groups does not fit {outputs} outputs in blocks of {d}")
    g = kdim // d
    diag = gram.reshape(gc, g, d, g, d)[:, np.arange(g), :, np.arange(g), :]  # [G, gc, d, d]
    h = diag.transpose(1, 0, 2, 3).reshape(gc * g, d, d)  # [gc*G, d, d]
    o = np.arange(outputs)
    groups = ((o // (outputs // gc))[:, None] * g + np.arange(g)[None, :]).reshape(-1)  # [outputs*G]
    return h, groups


def _apply_gram(e: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """e [O, K] -> rows H_{group(o)} e_o [O, K] (H symmetric)."""
    gc = gram.shape[0]
    if gc == 1:
        return e @ gram[0]
    o, kdim = e.shape
    return np.einsum("gok,gkl->gol", e.reshape(gc, o // gc, kdim), gram).reshape(o, kdim)


def refine_centroids(
    wt: np.ndarray, centroids: np.ndarray, idx: np.ndarray, gram: np.ndarray, iterations: int = 30
) -> tuple[np.ndarray, list[float]]:
    """Layer-wise fine-tuning of the shared centroids, assignments frozen.

    wt [O, K] (one output per row, blocks of d along K), idx [O*K/d], gram [gc, K, K].
    Minimises sum_o (w_hat_o - w_o)^T H (w_hat_o - w_o) over the centroids, cross-terms
    between the blocks of one output included: a linear least-squares problem in the
    k*d centroid values, solved by preconditioned conjugate gradients (matrix-free:
    Hessian-vector product = decode, multiply by H, scatter onto the centroids; the
    preconditioner is the block-diagonal metric of the EM's M-step).
    Returns float64 centroids [k, d] and the objective after each iteration.
    """
    k, d = centroids.shape
    o, kdim = wt.shape
    h, groups = block_metrics(gram, o, d)

    def scatter(rows: np.ndarray) -> np.ndarray:  # [O, K] -> [k, d]
        out = np.zeros((k, d))
        np.add.at(out, idx, rows.reshape(-1, d))
        return out

    def hess(p: np.ndarray) -> np.ndarray:  # [k, d] -> [k, d]
        return scatter(_apply_gram(p[idx].reshape(o, kdim), gram))

    def objective(c: np.ndarray) -> float:
        e = c[idx].reshape(o, kdim) - wt
        return float(np.sum(e * _apply_gram(e, gram)))

    g_count = np.zeros((h.shape[0], k))
    np.add.at(g_count, (groups, idx), 1.0)
    a = np.einsum("gk,gij->kij", g_count, h)  # [k, d, d]
    scale = np.maximum(np.trace(a, axis1=1, axis2=2) / d, 1e-30)
    a_inv = np.linalg.inv(a + (1e-9 * scale)[:, None, None] * np.eye(d)[None])

    def precond(r: np.ndarray) -> np.ndarray:
        return np.einsum("kij,kj->ki", a_inv, r)

    c = centroids.astype(np.float64)
    r = scatter(_apply_gram(wt, gram)) - hess(c)  # b - M c
    z = precond(r)
    p = z.copy()
    rz = float(np.sum(r * z))
    trace = [objective(c)]
    for _ in range(iterations):
        mp = hess(p)
        denom = float(np.sum(p * mp))
        if not denom > 0:
            break
        alpha = rz / denom
        c += alpha * p
        r -= alpha * mp
        trace.append(objective(c))
        z = precond(r)
        rz_new = float(np.sum(r * z))
        if rz_new <= 1e-20 * max(abs(rz), 1e-300):
            break
        p = z + (rz_new / rz) * p
        rz = rz_new
    return c, trace


def reassign_full(wt: np.ndarray, c: np.ndarray, idx: np.ndarray, gram: np.ndarray, sweeps: int = 1) -> np.ndarray:
    """Assignments under the full output error, centroids fixed: exact coordinate descent.

    wt [O, K], c [k, d], idx [O*K/d], gram [gc, K, K] -> new idx [O*K/d]. Outputs are
    independent in sum_o e_o^T H e_o, so all blocks at one position g of every output
    move at once: block g of output o takes argmin_c' (c'-c)^T H_gg (c'-c) + 2 (c'-c)^T (H e_o)_g
    (the current centroid is a candidate: the error never increases). H e is updated
    after each position, so later blocks compensate the error of earlier ones.
    """
    o, kdim = wt.shape
    k, d = c.shape
    n_pos = kdim // d
    gc = gram.shape[0]
    idx = idx.reshape(o, n_pos).copy()
    e = c[idx].reshape(o, kdim) - wt  # [O, K]
    he = _apply_gram(e, gram)  # [O, K]
    group_of = np.arange(o) // (o // gc)  # conv group of each output [O]
    for _ in range(sweeps):
        for g in range(n_pos):
            sl = slice(g * d, (g + 1) * d)
            cur = c[idx[:, g]]  # [O, d]
            if gc == 1:
                hgg = gram[0][sl, sl]  # [d, d]
                t = cur @ hgg - he[:, sl]  # [O, d]
                chc = np.einsum("kd,de,ke->k", c, hgg, c)[None, :]  # [1, k]
            else:
                hgg = gram[group_of][:, sl, sl]  # [O, d, d]
                t = np.einsum("od,ode->oe", cur, hgg) - he[:, sl]
                chc = np.einsum("kd,ode,ke->ok", c, hgg, c)  # [O, k]
            new = np.argmin(chc - 2.0 * (t @ c.T), axis=1)  # [O]
            delta = c[new] - cur  # [O, d]
            moved = np.flatnonzero(np.any(delta != 0, axis=1))
            if moved.size:
                e[moved, sl] += delta[moved]
                if gc == 1:
                    he[moved] += delta[moved] @ gram[0][sl, :]
                else:
                    he[moved] += np.einsum("od,odk->ok", delta[moved], gram[group_of[moved]][:, sl, :])
                idx[moved, g] = new[moved]
    return idx.reshape(-1)


def output_error(wt: np.ndarray, w_hat_t: np.ndarray, gram: np.ndarray) -> float:
    """sum_o (w_hat_o - w_o)^T H (w_hat_o - w_o) = ||X (W - W_hat)||^2 on the sampled rows."""
    e = w_hat_t - wt
    return float(np.sum(e * _apply_gram(e, gram)))


@dataclass
class FitReport:
    d: int
    k: int
    trace: EMTrace
    refine: list[float]  # objective of the centroid fine-tuning (empty if none)
    output_aware: bool


def fit_weights(
    w: np.ndarray, config: PQConfig, role: str = "other", x: np.ndarray | None = None
) -> PQFit:
    """One tensor -> PQFit. x [N, K]: the consumer's input rows (K = run length), or None
    (plain k-means on the weights: no calibration data)."""
    gram = None if x is None else (x.T.astype(np.float64) @ x.astype(np.float64))[None]
    return fit_weights_traced(w, config, role, gram)[0]


def fit_weights_traced(
    w: np.ndarray, config: PQConfig, role: str = "other", gram: np.ndarray | None = None, refine: int = 0,
    rounds: int = 1, em_blocks: int | None = None,
) -> tuple[PQFit, FitReport]:
    """gram [gc, K, K]: Gram of the consumer's input per conv group (activations.LayerStats),
    or None. refine: conjugate-gradient iterations of the centroid fine-tuning (needs gram).
    rounds: with refine, alternate (full-error reassignment, centroid fine-tuning) this many
    times after the first fine-tuning minus one; the float16 centroids get a last full-error
    reassignment when rounds > 1. em_blocks: EM on a sample of the blocks (fit_blocks)."""
    shape = tuple(int(s) for s in np.shape(w))
    order = axis_order(role, shape)
    run = run_length(shape, order)
    d = block_for(config, layer_type(role, shape), run)
    blocks = to_blocks(np.asarray(w, dtype=np.float64), order, d)  # [B, d]
    k = choose_k(config, blocks.shape[0])
    h = groups = None
    aware = gram is not None and gram.shape[1] == run and run % d == 0
    if aware:
        h, groups = block_metrics(gram, blocks.shape[0] * d // run, d)
    c16, idx, trace = fit_blocks(blocks, k, config.iterations, config.seed, h, groups, em_blocks)
    steps: list[float] = []
    if aware and refine > 0:
        wt = blocks.reshape(-1, run)  # [O, K]
        c, steps = refine_centroids(wt, c16.astype(np.float64), idx, gram, refine)
        for _ in range(rounds - 1):
            idx = reassign_full(wt, c, idx, gram)
            steps.append(output_error(wt, c[idx].reshape(wt.shape), gram))
            c, more = refine_centroids(wt, c, idx, gram, refine)
            steps += more[1:]
        c16 = _to_half(c)
        if rounds > 1:
            idx = reassign_full(wt, c16.astype(np.float64), idx, gram)
        steps.append(output_error(wt, c16.astype(np.float64)[idx].reshape(wt.shape), gram))
    assert idx.size == block_count(math.prod(shape), d)
    return PQFit(order=order, d=d, centroids=c16, indices=idx), FitReport(d, k, trace, steps, aware)
