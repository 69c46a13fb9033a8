"""Input activations of the layers that read chosen weights, as Gram matrices.

    model --(consumer inputs added as outputs; weights overridable: WeightProbe)--> session
    stats(batches, names, overrides) per batch (only the activations of ``names`` are fetched):
        Conv W [O, I/g, kh, kw], input x [N, I, H, W] --sampled im2col--> X [g, rows, I/g*kh*kw]
        MatMul B [K, N] / Gemm B, input A [..., K]    --flatten, sample--> X [1, rows, K]
    accumulate  gram[c] = sum X[c]^T X[c]   float64 [g, K, K]  (streamed: no X is kept)

The column order of X is the consumer's: (input channel, ky, kx) for Conv, so it matches
the row-major run of one output's weights (pq_fit.axis_order). Rows are subsampled per
batch (``max_rows``) to bound time; the Gram is an unnormalised sum, ``rows`` says how
many rows went in. ``overrides`` replaces weights (already-quantized lower layers) so that
a layer is fitted on the activations the compressed model will really produce.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from ..errors import ConfigError, ModelError
from ..graph.layers import Consumer, analyze
from .calib import Feeds
from .probe import WeightProbe, ort_failure


@dataclass
class LayerStats:
    gram: np.ndarray  # float64 [g, K, K]: sum over sampled rows of x x^T, per conv group
    rows: int


def find_consumers(model: onnx.ModelProto, names: Iterable[str]) -> dict[str, Consumer]:
    """The weights among ``names`` read directly by exactly one Conv / MatMul (as B) / Gemm
    (as B) node of the main graph (graph.layers.LayerUse.consumer); others are left out
    (they fall back to weight fitting)."""
    wanted = set(names)
    return {n: use.consumer for n, use in analyze(model).items() if n in wanted and use.consumer is not None}


def split_batch(batch: Feeds, max_batch: int) -> list[Feeds]:
    """Cut a feed dict along axis 0 into pieces of at most ``max_batch`` samples (bounds
    onnxruntime's arena), when every input has the same leading size; else unchanged."""
    sizes = {v.shape[0] if np.ndim(v) else -1 for v in batch.values()}
    if len(sizes) != 1 or (n := sizes.pop()) <= max_batch:
        return [batch]
    return [{k: v[i : i + max_batch] for k, v in batch.items()} for i in range(0, n, max_batch)]


def conv_rows(x: np.ndarray, c: Consumer, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """x [N, I, H, W] -> sampled im2col rows [g, R, I/g*kh*kw] (columns: channel, ky, kx)."""
    (sh, sw), (pt, pl, pb, pr), (dh, dw), group = c.attrs
    _, _, kh, kw = c.shape
    n, i_ch, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))  # [N, I, H+, W+]
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    total = n * oh * ow
    pick = rng.choice(total, size=min(max_rows, total), replace=False) if total > max_rows else np.arange(total)
    ni, rem = np.divmod(pick, oh * ow)
    oy, ox = np.divmod(rem, ow)
    ys = oy[:, None] * sh + np.arange(kh)[None, :] * dh  # [R, kh]
    xs = ox[:, None] * sw + np.arange(kw)[None, :] * dw  # [R, kw]
    patches = xp[ni[:, None, None, None], np.arange(i_ch)[None, :, None, None], ys[:, None, :, None], xs[:, None, None, :]]
    # patches [R, I, kh, kw] -> [g, R, I/g*kh*kw]
    r = patches.shape[0]
    return patches.reshape(r, group, (i_ch // group) * kh * kw).transpose(1, 0, 2)


def dense_rows(a: np.ndarray, c: Consumer, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """A [..., K] (Gemm: [M, K], or [K, M] with transA) -> sampled rows [1, R, K]."""
    if c.role.startswith("gemm") and c.attrs and c.attrs[0]:
        a = a.T
    rows = a.reshape(-1, a.shape[-1])
    if rows.shape[0] > max_rows:
        rows = rows[rng.choice(rows.shape[0], size=max_rows, replace=False)]
    return rows[None]


class ActivationProbe:
    """Collects LayerStats for chosen weights, with any weights overridden."""

    def __init__(self, model: onnx.ModelProto, names: Iterable[str], threads: int | None = None):
        self.consumers = find_consumers(model, names)
        if not self.consumers:
            raise ConfigError("no weight is read directly by a Conv, MatMul or Gemm: nothing to calibrate")
        exposed = onnx.ModelProto()
        exposed.CopyFrom(model)
        present = {o.name for o in exposed.graph.output}
        for act in sorted({c.activation for c in self.consumers.values()} - present):
            exposed.graph.output.append(helper.make_empty_tensor_value_info(act))
        # the calibrated weights are overridable (lower layers replaced by their quantized
        # values); other initializers stay constants so onnxruntime still folds them
        self.probe = WeightProbe(exposed, sorted(self.consumers), threads=threads)

    def _run(self, wanted: list[str], feeds: Feeds) -> dict[str, np.ndarray]:
        try:
            return dict(zip(wanted, self.probe.session.run(wanted, feeds)))
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"onnxruntime failed on a calibration batch: {ort_failure(exc)}") from None

    def stats(
        self,
        batches: list[Feeds],
        names: Iterable[str],
        overrides: Mapping[str, np.ndarray] | None = None,
        max_rows: int = 4096,
        seed: int = 0,
        max_batch: int = 64,
    ) -> dict[str, LayerStats]:
        """Run every batch once; Gram of each named weight's consumer input.
        max_rows: rows sampled per batch and layer (pro rata for the pieces of a batch cut
        into at most ``max_batch`` samples)."""
        names = [n for n in names if n in self.consumers]
        wanted = sorted({self.consumers[n].activation for n in names})  # only these leave the session
        rng = np.random.default_rng(seed)
        acc: dict[str, LayerStats] = {}
        feeds_w = {name: np.ascontiguousarray(v, dtype=self.probe.base[name].dtype).reshape(self.probe.base[name].shape)
                   for name, v in (overrides or {}).items() if name in self.probe.base}
        for whole in batches:
            pieces = split_batch(whole, max_batch)
            rows_each = max(1, -(-max_rows // len(pieces)))  # the same rows per batch, cut or not
            for batch in pieces:
                outputs = self._run(wanted, {**batch, **feeds_w})
                for name in names:
                    c = self.consumers[name]
                    act = outputs[c.activation]  # float32: only the sampled rows are widened
                    x = conv_rows(act, c, rows_each, rng) if c.role == "conv" else dense_rows(act, c, rows_each, rng)
                    x = x.astype(np.float64)
                    gram = np.matmul(x.transpose(0, 2, 1), x)  # [g, K, K] (BLAS; einsum would loop)
                    if name in acc:
                        acc[name].gram += gram
                        acc[name].rows += x.shape[1]
                    else:
                        acc[name] = LayerStats(gram=gram, rows=x.shape[1])
        return acc
