"""The encode stage: each planned tensor is quantized once, entropy-coded once, swapped in.

    make_plan(model, config)          graph.select_sources + CompressConfig.tensor_plan
        -> Plan: [(source, candidate, TensorPlan)] + the weights kept dense
    quantize_plan(plan)               codec.quantize per tensor (threads)
        -> [EncodedTensor]: Quantized + the SQNR of its exact decode (codec.dequantize)
    (encoder-side stages may replace a tensor's Quantized here: codeword tables)
    write(plan, encoded)              codec.pack per tensor (coder, once) -> blobs
        -> graph.replace_weights -> (model, CompressReport)
    encode_and_pack(plan)             fixed settings: quantize + pack per tensor as one job
        on the plan's backend (encoder.backends: threads, processes, ray), in plan order

A tensor's values are read only when its job runs (PlannedTensor.array): a model loaded
with its external data deferred (modelio.load_model(defer_external=True)) is read one
tensor at a time through a memory map, never whole. With a ``spill`` (modelio.spill_file)
each blob is written to it as soon as it is coded and the model holds a deferred tensor
reading it back: the blobs are not held in memory either.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import onnx

from ..codec import EncodeResult, Quantized
from ..graph.layers import analyze
from ..graph.modelio import Spill, proto_size, tensor_array
from ..graph.rewrite import replace_weights
from ..graph.select import Action, Candidate, Source, select_sources
from . import backends
from .backends import EncodeJob, encode_array, pack_named
from .config import CompressConfig, TensorPlan


@dataclass(frozen=True)
class TensorReport:
    name: str
    shape: tuple[int, ...]
    dtype: str
    action: Action
    original_bytes: int
    blob_bytes: int
    entropy_bits: float  # order-0 entropy of the symbols, bits per weight
    step: float
    sqnr_db: float  # inf when lossless

    @property
    def bits_per_weight(self) -> float:
        numel = math.prod(self.shape)
        return 8.0 * self.blob_bytes / numel if numel else 0.0


@dataclass
class CompressReport:
    tensors: list[TensorReport]
    kept: list[Candidate]
    original_model_bytes: int = 0
    compressed_model_bytes: int = 0

    @property
    def ratio(self) -> float:
        return self.original_model_bytes / max(1, self.compressed_model_bytes)


@dataclass(frozen=True)
class PlannedTensor:
    source: Source
    cand: Candidate
    plan: TensorPlan

    @property
    def name(self) -> str:
        return self.cand.name

    def array(self) -> np.ndarray:
        """The tensor's values (a deferred one read now, through a memory map)."""
        return tensor_array(self.source.tensor)


@dataclass
class Plan:
    """The model (edited in place by ``write``) and what to do with each of its weights."""

    model: onnx.ModelProto
    tensors: list[PlannedTensor]
    kept: list[Candidate]
    coder: str
    original_bytes: int
    threads: int | None = None
    backend: str = "threads"  # where encode_and_pack runs the jobs (encoder.backends)
    backend_address: str | None = None

    def by_name(self) -> dict[str, PlannedTensor]:
        return {t.name: t for t in self.tensors}


@dataclass
class EncodedTensor:
    planned: PlannedTensor
    quantized: Quantized
    sqnr_db: float
    decoded: np.ndarray | None = None  # codec.dequantize(quantized), when kept

    @property
    def name(self) -> str:
        return self.planned.name

    @property
    def action(self) -> Action:
        return Action.LOSSLESS if self.planned.plan.exact else Action.QUANTIZE


def make_plan(model: onnx.ModelProto, config: CompressConfig, *, inplace: bool = False) -> Plan:
    """Select the weights of ``model`` (a copy unless ``inplace``) and plan each one."""
    if not inplace:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        model = copy
    layers = analyze(model)
    pairs = select_sources(model, config.min_elements, layers)
    tensors = []
    for src, cand in pairs:
        if cand.action is Action.KEEP:
            continue
        tensors.append(PlannedTensor(src, cand, config.tensor_plan(cand, tensor_array(src.tensor))))
    kept = [c for _, c in pairs if c.action is Action.KEEP]
    return Plan(model, tensors, kept, config.coder, proto_size(model), config.threads, config.backend,
                config.backend_address)


def encode_one(planned: PlannedTensor, keep_decoded: bool = False, quantized: Quantized | None = None,
               decoded: np.ndarray | None = None) -> EncodedTensor:
    """Quantize one tensor (unless ``quantized`` is given: a stage's result for this plan,
    with ``decoded`` its exact decode when the stage has it) and measure its exact decode;
    errors name the tensor."""
    quantized, sqnr, decoded = encode_array(planned.name, planned.array(), planned.plan, keep_decoded=keep_decoded,
                                            quantized=quantized, decoded=decoded)
    return EncodedTensor(planned, quantized, sqnr, decoded)


def quantize_plan(plan: Plan, *, keep_decoded: bool = False,
                  progress: Callable[[int], object] | None = None) -> list[EncodedTensor]:
    """Every planned tensor quantized (in parallel; workers only read the proto)."""
    out = []
    with ThreadPoolExecutor(max_workers=plan.threads or os.cpu_count() or 1) as pool:
        for enc in pool.map(lambda t: encode_one(t, keep_decoded), plan.tensors):
            out.append(enc)
            if progress:
                progress(enc.planned.cand.numel)
    return out


def pack_all(plan: Plan, encoded: list[EncodedTensor]) -> list[EncodeResult]:
    """Entropy-code each tensor (in parallel): the blobs, in the order of ``encoded``."""
    with ThreadPoolExecutor(max_workers=plan.threads or os.cpu_count() or 1) as pool:
        return list(pool.map(lambda e: _pack(e, plan.coder), encoded))


def write(plan: Plan, encoded: list[EncodedTensor], packed: list[EncodeResult] | None = None, *,
          release: bool = False) -> tuple[onnx.ModelProto, CompressReport]:
    """Swap the blobs into ``plan.model`` (coded here unless ``packed`` gives them), report.
    ``release``: each entry of ``packed`` is set to None once its blob is in the model (the
    blobs are then in memory once, not twice)."""
    packed = pack_all(plan, encoded) if packed is None else packed
    reports: list[TensorReport] = []
    kept_late: list[Candidate] = []
    swaps = []
    for i, (enc, result) in enumerate(zip(encoded, packed)):
        cand = enc.planned.cand
        dtype = result.header.dtype
        if _incompressible(enc, result):
            kept_late.append(Candidate(cand.name, cand.elem_type, cand.shape, Action.KEEP, "incompressible", cand.kind))
            continue
        reports.append(TensorReport(
            name=cand.name, shape=cand.shape, dtype=dtype.name, action=enc.action,
            original_bytes=cand.numel * dtype.numpy.itemsize, blob_bytes=_blob_len(result.blob),
            entropy_bits=result.entropy_bits, step=result.header.step, sqnr_db=enc.sqnr_db,
        ))
        swaps.append((i, enc.planned.source, dtype))

    def blobs():
        for i, source, dtype in swaps:
            blob = packed[i].blob
            if release:
                packed[i] = None  # type: ignore[call-overload]
            yield source, blob, dtype
            del blob

    replace_weights(plan.model, blobs())
    report = CompressReport(tensors=reports, kept=plan.kept + kept_late, original_model_bytes=plan.original_bytes,
                            compressed_model_bytes=proto_size(plan.model))
    return plan.model, report


def _blob_len(blob: bytes | onnx.TensorProto) -> int:
    """Bytes of a blob, in memory or spilled (a deferred uint8 tensor)."""
    return int(blob.dims[0]) if isinstance(blob, onnx.TensorProto) else len(blob)


def _incompressible(enc: EncodedTensor, result: EncodeResult) -> bool:
    """A lossless blob no smaller than the tensor's own bytes: the tensor stays dense."""
    itemsize = result.header.dtype.numpy.itemsize
    return enc.action is Action.LOSSLESS and _blob_len(result.blob) >= enc.planned.cand.numel * itemsize


def _pack(enc: EncodedTensor, coder: str):
    return pack_named(enc.name, enc.quantized, coder)


def compress_model(
    model: onnx.ModelProto,
    config: CompressConfig | None = None,
    *,
    inplace: bool = False,
    progress: Callable[[int], object] | None = None,
    spill: Spill | None = None,
) -> tuple[onnx.ModelProto, CompressReport]:
    """Fixed settings: plan every selected weight from ``config``, encode each once, swap
    it for a decode node; return the model and a report. ``progress(n)`` is called with
    the number of weights done after each tensor. ``spill``: each blob is written there
    as it is coded (the model then reads it from there until it is saved, inside the
    spill's block); the same model bytes are saved."""
    plan = make_plan(model, config or CompressConfig(), inplace=inplace)
    encoded, packed = encode_and_pack(plan, progress=progress, spill=spill)
    return write(plan, encoded, packed, release=True)


def encode_and_pack(plan: Plan, *, progress: Callable[[int], object] | None = None, spill: Spill | None = None
                    ) -> tuple[list[EncodedTensor], list[EncodeResult]]:
    """Each planned tensor quantized and entropy-coded as one job on ``plan.backend``, its
    symbols dropped as soon as it is coded, its values read only when the job is made:
    what stays in memory is the blobs (and the model), not every tensor at once; with a
    ``spill``, not the blobs either (each result's blob is then a deferred uint8 tensor).
    Results are taken in plan order: the same bytes for any backend and worker count.
    ``EncodedTensor.quantized`` is None in the result."""
    backend = backends.make(plan.backend, plan.backend_address)
    jobs = ((lambda t=t: EncodeJob(t.name, t.array(), t.plan, plan.coder)) for t in plan.tensors)
    encoded, packed = [], []
    for planned, done in zip(plan.tensors, backend.run(jobs, plan.threads)):
        enc = EncodedTensor(planned, None, done.sqnr_db)  # type: ignore[arg-type]  # coded: no symbols
        result = done.result
        if spill is not None and not _incompressible(enc, result):
            blob = spill.put(planned.name, result.blob, onnx.TensorProto.UINT8, [len(result.blob)])
            result = replace(result, blob=blob)
        del done
        encoded.append(enc)
        packed.append(result)
        if progress:
            progress(planned.cand.numel)
    return encoded, packed
