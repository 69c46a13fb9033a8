"""End-to-end distillation of what the decoder reads (issue 14).

    original model (teacher) ----------------------------- bridge.run(feeds) --> y_t
    compressed tensors (Quantized: indices frozen) --params.trainable--> leaves theta
        --weight(theta), the decoder's formula in torch--> bridge.run(feeds, weights) --> y_s
    loss(y_s, y_t): KL on class scores, 1 - cosine on embeddings, relative MSE otherwise
    Adam on theta over the fit part of the calibration set (minibatches, cosine-decayed lr);
    the held-out part is evaluated every ``eval_every`` steps, the best state is kept
    --> to_quantized() per tensor: new params / step, the same symbols
    --> kept only if the held-out loss went down; each new Quantized is checked to decode
        (codec.dequantize) to exactly the weight the held-out loss was measured with

``distill`` takes the compressed model (decode nodes) or the encode stage's tensors
(``encoder.EncodedTensor`` list, or name -> ``codec.Quantized``) and hands back the same
kind, with only the distilled tensors replaced. Raises MissingTorchError without torch and
UnsupportedOpError when the bridge cannot run an op of the model (callers print
``exc.skipped`` and go on with their blobs).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import onnx

from .. import coders, quantizers
from ..codec import Quantized, dequantize, pack, row_length
from ..errors import ConfigError
from ..format import parse_blob
from ..quantizers.base import Encoded
from ..quantizers.lattice import LatticeQuantizer
from .errors import DistillError, require_torch

LOSSES = ("auto", "kl", "cosine", "mse")


# ---- what the caller passes ------------------------------------------------------------
def quantized_from_model(model: onnx.ModelProto) -> tuple[dict[str, Quantized], dict[str, str]]:
    """The decode nodes of a compressed model -> (name -> Quantized, name -> coder name):
    the blobs' symbols decoded (the reference coders), their headers and params as stored."""
    from ..graph.rewrite import blob_bytes, decode_nodes

    out, coder_of = {}, {}
    for node, init in decode_nodes(model):
        header, payload = parse_blob(blob_bytes(init))
        q = quantizers.by_id(header.quantizer)
        q.check(header)
        coder = coders.by_id(header.coder)
        symbols = coder.decode(payload, q.symbol_count(header), header.symbol_width)
        period = q.lattice.n if isinstance(q, LatticeQuantizer) else 1
        encoded = Encoded(symbols=symbols, symbol_width=header.symbol_width, step=header.step, seed=header.seed,
                          params=header.params, period=period)
        like = np.broadcast_to(np.zeros(1, np.uint8), header.shape)  # shape only, no memory
        bare = replace(header, coder=0, payload_len=0, flags=0, checksum=0)
        out[node.output[0]] = Quantized(bare, encoded, row_length(like, encoded))
        coder_of[node.output[0]] = coder.name
    return out, coder_of


def _batches(source, model: onnx.ModelProto) -> list[dict[str, np.ndarray]]:
    from ..fit.calib import CalibrationSet, calibration_set

    if source is None:
        return []
    if isinstance(source, Mapping):  # one feed dict
        return [{k: np.asarray(v) for k, v in source.items()}]
    if not isinstance(source, CalibrationSet):
        source = calibration_set(model, source, samples=1 << 30)
    return list(source.batches)


class _Pool:
    """Feeds and the teacher's outputs for them, drawn as minibatches (samples on axis 0
    when every batch has them; otherwise whole batches in turn)."""

    def __init__(self, batches: list[dict[str, np.ndarray]], bridge, chunk: int):
        t = require_torch()
        self.stacked = None
        rows = [_rows(b) for b in batches]
        if batches and all(r is not None for r in rows):
            try:
                self.stacked = {k: np.concatenate([b[k] for b in batches]) if np.ndim(batches[0][k]) >= 1
                                and batches[0][k].shape[0] == rows[0] else batches[0][k] for k in batches[0]}
            except ValueError:  # batches of different shapes (padded sequences): whole batches
                self.stacked = None
        if self.stacked is not None:
            self.n = next(v.shape[0] for v in self.stacked.values() if np.ndim(v) >= 1)
            self.batched = [k for k, v in self.stacked.items() if np.ndim(v) >= 1 and v.shape[0] == self.n]
            self.chunks = [self._take(np.arange(s, min(self.n, s + chunk))) for s in range(0, self.n, chunk)]
        else:
            self.n = sum(r or 1 for r in rows)
            self.chunks = [{k: np.asarray(v) for k, v in b.items()} for b in batches]
        with t.no_grad():
            self.targets = [[o.detach() for o in bridge.run(c)] for c in self.chunks]
        self._order: list = []

    def _take(self, index: np.ndarray) -> dict[str, np.ndarray]:
        return {k: (v[index] if k in self.batched else v) for k, v in self.stacked.items()}

    def minibatch(self, rng: np.random.Generator, size: int):
        """(feeds, teacher outputs) of ``size`` samples, an epoch-wise permutation."""
        if self.stacked is None:
            if not self._order:
                self._order = list(rng.permutation(len(self.chunks)))
            i = self._order.pop()
            return self.chunks[i], self.targets[i]
        if len(self._order) < size:
            self._order = list(rng.permutation(self.n)) + self._order
        index = np.sort(np.array([self._order.pop() for _ in range(min(size, self.n))]))
        feeds = self._take(index)
        targets = self._teacher_rows(index)
        return feeds, targets

    def _teacher_rows(self, index: np.ndarray):
        t = require_torch()
        full = [t.cat([c[j] for c in self.targets]) if self.targets[0][j].dim() >= 1 else self.targets[0][j]
                for j in range(len(self.targets[0]))]
        return [o[t.from_numpy(index)] if o.dim() >= 1 and o.shape[0] == self.n else o for o in full]


def _rows(batch: Mapping[str, np.ndarray]) -> int | None:
    for v in batch.values():
        if np.ndim(v) >= 1:
            return int(np.shape(v)[0])
    return None


# ---- losses ------------------------------------------------------------------------------
def resolve_loss(model: onnx.ModelProto, loss: str) -> str:
    """"auto" -> kl for class scores, cosine for an embedding, mse otherwise (the project's
    default fidelity target, fit.fidelity.default_target, decides which the outputs are)."""
    if loss not in LOSSES:
        raise ConfigError(f"loss must be one of {LOSSES}, got {loss!r}")
    if loss != "auto":
        return loss
    from ..fit.fidelity import default_target

    kind = default_target(model)[0]
    return {"agreement": "kl", "cosine": "cosine"}.get(kind, "mse")


def _loss_fn(kind: str) -> Callable:
    def kl(out, ref):
        t = require_torch()
        s, r = out[0].float(), ref[0].float()
        p = t.softmax(r, dim=-1)
        return (p * (t.log_softmax(r, dim=-1) - t.log_softmax(s, dim=-1))).sum(-1).mean()

    def cosine(out, ref):
        t = require_torch()
        s, r = out[0].float(), ref[0].float()
        return (1.0 - t.nn.functional.cosine_similarity(s, r, dim=-1, eps=1e-12)).mean()

    def mse(out, ref):
        total = 0.0
        floats = [(s.float(), r.float()) for s, r in zip(out, ref) if r.is_floating_point()]
        for s, r in floats:
            total = total + ((s - r) ** 2).sum() / (r * r).sum().clamp_min(1e-30)
        return total / max(1, len(floats))

    return {"kl": kl, "cosine": cosine, "mse": mse}[kind]


# ---- the result ----------------------------------------------------------------------------
@dataclass
class DistillReport:
    loss: str
    fit_samples: int
    holdout_samples: int
    holdout_before: float  # the loss on the held-out samples, compressed model as given
    holdout_after: float  # ... with the kept state (equal to before when not kept)
    kept: bool
    steps: int
    best_step: int
    seconds: float
    agreement_before: float | None = None  # top-1 agreement with the teacher on the held-out samples (kl)
    agreement_after: float | None = None
    params_bytes_before: int = 0  # sum of the distilled tensors' params sections
    params_bytes_after: int = 0
    tensors: list[tuple[str, str]] = field(default_factory=list)  # (name, what was trained)
    untouched: list[str] = field(default_factory=list)  # compressed tensors with nothing to train (raw)
    trace: list[tuple[int, float, float]] = field(default_factory=list)  # (step, train loss, held-out loss)

    def describe(self) -> str:
        head = (f"distillation ({self.loss}, {self.steps} steps, {len(self.tensors)} tensors, "
                f"{self.fit_samples} fit / {self.holdout_samples} held-out samples, {self.seconds:.1f} s): "
                f"held-out loss {self.holdout_before:.5g} -> {self.holdout_after:.5g}")
        if self.agreement_before is not None:
            head += f", agreement {self.agreement_before:.4f} -> {self.agreement_after:.4f}"
        extra = self.params_bytes_after - self.params_bytes_before
        head += f", params {extra:+d} bytes" if self.kept else ""
        return head + ("" if self.kept else " (no held-out gain: the blobs are kept as they were)")


@dataclass
class DistillResult:
    report: DistillReport
    quantized: dict[str, Quantized]  # the replaced tensors only (empty when not kept)
    model: onnx.ModelProto | None = None  # when a compressed model was given: it with the new blobs
    encoded: list | None = None  # when EncodedTensor were given: the list with the new ones


# ---- the loop -------------------------------------------------------------------------------
def distill(
    original_model: onnx.ModelProto,
    compressed,
    calib_feeds,
    holdout_feeds=None,
    *,
    steps: int = 300,
    lr: float = 1e-3,
    loss: str = "auto",
    batch: int = 64,
    eval_every: int | None = None,
    table_budget: float = 0.05,
    train_steps: bool = True,
    seed: int = 0,
    threads: int | None = None,
    log: Callable[[str], object] | None = None,
) -> DistillResult:
    """Fine-tune the decoder's parameters of ``compressed`` toward ``original_model``'s outputs.

    compressed:   a compressed ModelProto (decode nodes), a list of encoder.EncodedTensor, or
                  name -> codec.Quantized; indices (symbols) are never changed.
    calib_feeds:  what training sees: a fit.calib.CalibrationSet, an .npz path, an iterable of
                  feed dicts or one feed dict. Without ``holdout_feeds`` it is split by
                  fit.calib.split_holdout (every 4th sample held out).
    steps, lr:    Adam steps and learning rate, relative: lr 1e-3 moves a centroid by about
                  1e-3 of its tensor's RMS per step, a codeword by the same in weight units,
                  a log-step by 1e-3 (cosine decay to 0 over ``steps``).
    loss:         "auto" | "kl" | "cosine" | "mse".
    table_budget: scalar / lattice tensors get trainable codeword-table entries for their most
                  used symbols, up to this fraction of the tensor's index bits (64 n bits an
                  entry); 0: steps only. train_steps: also train the step(s).
    """
    t = require_torch()
    say = log or (lambda _m: None)
    start = time.perf_counter()
    if steps < 0 or not (lr > 0 and math.isfinite(lr)) or batch < 1:
        raise ConfigError("steps must be >= 0, lr > 0 and batch >= 1")
    kind = resolve_loss(original_model, loss)
    if threads:
        t.set_num_threads(int(threads))
    t.manual_seed(seed)
    rng = np.random.default_rng(seed)

    tensors, coder_of, encoded_list = _normalise(compressed)
    from . import params as tparams
    from .bridge import Bridge

    trainables, untouched = [], []
    for name, q in tensors.items():
        tr = tparams.trainable(name, q, table_budget=table_budget, train_steps=train_steps)
        (trainables if tr is not None and tr.parameters() else untouched).append(tr if tr is not None else name)
    untouched = [u if isinstance(u, str) else u.name for u in untouched]
    fixed = {name: _const(dequantize(tensors[name])) for name in untouched}
    bridge = Bridge(original_model, trainable=frozenset(tensors))
    fit_batches, held_batches = _split(calib_feeds, holdout_feeds, original_model)
    fit = _Pool(fit_batches, _teacher(bridge, tensors), batch)
    held = _Pool(held_batches, _teacher(bridge, tensors), max(batch, 128))
    loss_fn = _loss_fn(kind)

    def weights():
        return {**fixed, **{tr.name: tr.weight() for tr in trainables}}

    def evaluate() -> tuple[float, float | None]:
        with t.no_grad():
            w = weights()
            total, agree, count = 0.0, 0, 0
            for feeds, ref in zip(held.chunks, held.targets):
                out = bridge.run(feeds, w)
                rows = _rows(feeds) or 1
                total += float(loss_fn(out, ref)) * rows
                count += rows
                if kind == "kl":
                    agree += int((out[0].argmax(-1) == ref[0].argmax(-1)).sum())
            return total / max(1, count), (agree / max(1, count) if kind == "kl" else None)

    before, agree_before = evaluate()
    say(f"held-out {kind} loss before: {before:.5g}" + (f", agreement {agree_before:.4f}" if agree_before is not None
                                                       else ""))
    leaves = [(p, lr * scale) for tr in trainables for p, scale in tr.parameters()]
    best, best_agree, best_step, best_state = before, agree_before, 0, None
    trace = []
    if leaves and steps:
        opt = _Adam(leaves)
        every = eval_every or max(1, steps // 10)
        running = None
        for step in range(1, steps + 1):
            feeds, ref = fit.minibatch(rng, batch)
            value = loss_fn(bridge.run(feeds, weights()), ref)
            if not value.requires_grad:  # e.g. weights the bridge reads from Constant nodes
                raise DistillError("the trained values do not reach the outputs through the bridge "
                                   "(nothing to distil)")
            for p, _ in leaves:
                p.grad = None
            value.backward()
            opt.step(0.5 * (1.0 + math.cos(math.pi * (step - 1) / steps)))  # cosine decay
            loss_value = float(value.detach())
            running = loss_value if running is None else 0.9 * running + 0.1 * loss_value
            if step % every == 0 or step == steps:
                h, a = evaluate()
                trace.append((step, running, h))
                say(f"step {step}: fit loss {running:.5g}, held-out {h:.5g}" + (f", agreement {a:.4f}" if a is not None
                                                                             else ""))
                if h < best:
                    best, best_agree, best_step = h, a, step
                    best_state = [tr.state() for tr in trainables]
    kept = best_state is not None and best < before
    report = DistillReport(kind, fit.n, held.n, before, best if kept else before, kept, steps, best_step if kept else 0,
                           0.0, agree_before, best_agree if kept else agree_before,
                           tensors=[(tr.name, tr.describe()) for tr in trainables], untouched=untouched, trace=trace)
    new: dict[str, Quantized] = {}
    if kept:
        for tr, state in zip(trainables, best_state):
            tr.load(state)
            new[tr.name] = _checked(tr)
        report.params_bytes_before = sum(len(tensors[n].header.params) for n in new)
        report.params_bytes_after = sum(len(q.header.params) for q in new.values())
    report.seconds = time.perf_counter() - start
    say(report.describe())
    return DistillResult(report, new, *_rebuild(compressed, encoded_list, coder_of, new))


def distill_encoded(original_model: onnx.ModelProto, encoded: list, calib_feeds, holdout_feeds=None, **options
                    ) -> tuple[list, DistillReport]:
    """The pipeline's hook: encoder.EncodedTensor list in, the same list with the distilled
    tensors' Quantized (and SQNR) replaced out, plus the report."""
    result = distill(original_model, list(encoded), calib_feeds, holdout_feeds, **options)
    return result.encoded, result.report


class _Adam:
    """Adam (Kingma & Ba) on a few leaves, each with its own learning rate: torch.optim.Adam's
    update without its import (which loads torch._dynamo: seconds per process)."""

    def __init__(self, leaves, betas=(0.9, 0.999), eps=1e-8):
        self.leaves, self.betas, self.eps, self.t = leaves, betas, eps, 0
        self.m = [p.detach().clone().zero_() for p, _ in leaves]
        self.v = [p.detach().clone().zero_() for p, _ in leaves]

    def step(self, factor: float = 1.0) -> None:
        t = require_torch()
        self.t += 1
        b1, b2 = self.betas
        with t.no_grad():
            for (p, lr), m, v in zip(self.leaves, self.m, self.v):
                if p.grad is None:
                    continue
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (v / (1 - b2 ** self.t)).sqrt_().add_(self.eps)
                p.addcdiv_(m, denom, value=-lr * factor / (1 - b1 ** self.t))


def _const(array: np.ndarray):
    from .bridge import to_tensor

    return to_tensor(array)


def _teacher(bridge, tensors):
    """The bridge with the original weights (the teacher)."""
    return _Teacher(bridge)


class _Teacher:
    def __init__(self, bridge):
        self.bridge = bridge

    def run(self, feeds, weights=None):
        return self.bridge.run(feeds, self.bridge.originals)


def _split(calib_feeds, holdout_feeds, model):
    from ..fit.calib import CalibrationSet, split_holdout

    if holdout_feeds is not None:
        return _batches(calib_feeds, model), _batches(holdout_feeds, model)
    batches = _batches(calib_feeds, model)
    try:
        fit, held = split_holdout(CalibrationSet(batches, False, "distill"), model=model)
    except ConfigError as exc:  # too few samples (or whole feeds) to keep some for its own check
        raise DistillError(f"the calibration inputs are too few to hold some out for its own check ({exc})") from None
    return fit.batches, held.batches


def _normalise(compressed) -> tuple[dict[str, Quantized], dict[str, str], list | None]:
    if isinstance(compressed, onnx.ModelProto):
        tensors, coder_of = quantized_from_model(compressed)
        return tensors, coder_of, None
    if isinstance(compressed, Mapping):
        return dict(compressed), {}, None
    if isinstance(compressed, Iterable):
        items = list(compressed)
        tensors = {e.name: e.quantized for e in items if not e.planned.plan.exact and e.quantized is not None}
        return tensors, {}, items
    raise ConfigError(f"compressed must be a compressed ModelProto, EncodedTensor list or name -> Quantized, "
                      f"got {type(compressed).__name__}")


def _checked(tr) -> Quantized:
    """tr.to_quantized(), verified to decode (the reference decoder) to exactly tr.weight()."""
    t = require_torch()
    q = tr.to_quantized()
    with t.no_grad():
        trained = tr.weight().detach().numpy()
    decoded = dequantize(q)
    if decoded.shape != trained.shape or decoded.dtype != trained.dtype or \
            decoded.tobytes() != np.ascontiguousarray(trained).tobytes():
        raise DistillError(f"{tr.name}: the written blob does not decode to the trained weight")
    return q


def _rebuild(compressed, encoded_list, coder_of, new: dict[str, Quantized]):
    """(model, encoded) of the caller's kind with the new tensors in."""
    if isinstance(compressed, onnx.ModelProto):
        return replace_blobs(compressed, new, coder_of), None
    if encoded_list is not None:
        from ..encoder.stage import encode_one

        out = [encode_one(e.planned, quantized=new[e.name]) if e.name in new else e for e in encoded_list]
        return None, out
    return None, None


def replace_blobs(model: onnx.ModelProto, new: dict[str, Quantized], coder_of: dict[str, str]) -> onnx.ModelProto:
    """A copy of a compressed ``model`` whose decode nodes for ``new`` read new blobs
    (codec.pack with each blob's own coder); every other byte is unchanged."""
    from ..graph.rewrite import decode_nodes

    out = onnx.ModelProto()
    out.CopyFrom(model)
    for node, init in decode_nodes(out):
        name = node.output[0]
        if name in new:
            blob = pack(new[name], coder_of.get(name, "brotli")).blob
            init.ClearField("int32_data")
            init.raw_data = blob
            del init.dims[:]
            init.dims.append(len(blob))
    return out
