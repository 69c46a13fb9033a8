"""The encode stage: each planned tensor is quantized once, entropy-coded once, swapped in.

    make_plan(model, config)          graph.select_sources + CompressConfig.tensor_plan
        -> Plan: [(source, candidate, TensorPlan)] + the weights kept dense
    quantize_plan(plan)               codec.quantize per tensor (threads)
        -> [EncodedTensor]: Quantized + the SQNR of its exact decode (codec.dequantize)
    (encoder-side stages may replace a tensor's Quantized here: codeword tables)
    write(plan, encoded)              codec.pack per tensor (coder, once) -> blobs
        -> graph.replace_weights -> (model, CompressReport)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from ..codec import EncodeResult, Quantized, dequantize, pack, quantize, quantized_sqnr, sqnr_db
from ..errors import UdcError
from ..graph.layers import analyze
from ..graph.modelio import proto_size
from ..graph.rewrite import replace_weights
from ..graph.select import Action, Candidate, Source, select_sources
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
        return numpy_helper.to_array(self.source.tensor)


@dataclass
class Plan:
    """The model (edited in place by ``write``) and what to do with each of its weights."""

    model: onnx.ModelProto
    tensors: list[PlannedTensor]
    kept: list[Candidate]
    coder: str
    original_bytes: int
    threads: int | None = None

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
        tensors.append(PlannedTensor(src, cand, config.tensor_plan(cand, numpy_helper.to_array(src.tensor))))
    kept = [c for _, c in pairs if c.action is Action.KEEP]
    return Plan(model, tensors, kept, config.coder, proto_size(model), config.threads)


def encode_one(planned: PlannedTensor, keep_decoded: bool = False, quantized: Quantized | None = None,
               decoded: np.ndarray | None = None) -> EncodedTensor:
    """Quantize one tensor (unless ``quantized`` is given: a stage's result for this plan,
    with ``decoded`` its exact decode when the stage has it) and measure its exact decode;
    errors name the tensor."""
    try:
        array = planned.array()
        plan = planned.plan
        quantized = quantized if quantized is not None else quantize(array, plan.quantizer, plan.config, plan.seed)
        if plan.exact:
            return EncodedTensor(planned, quantized, math.inf, array if keep_decoded else None)
        if decoded is None and not keep_decoded:  # the SQNR only: decoded a piece at a time
            return EncodedTensor(planned, quantized, quantized_sqnr(array, quantized))
        decoded = dequantize(quantized) if decoded is None else decoded
        return EncodedTensor(planned, quantized, sqnr_db(array, decoded), decoded if keep_decoded else None)
    except UdcError as exc:
        raise type(exc)(f"{planned.name}: {exc}") from None


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


def write(plan: Plan, encoded: list[EncodedTensor],
          packed: list[EncodeResult] | None = None) -> tuple[onnx.ModelProto, CompressReport]:
    """Swap the blobs into ``plan.model`` (coded here unless ``packed`` gives them), report."""
    packed = pack_all(plan, encoded) if packed is None else packed
    reports: list[TensorReport] = []
    kept_late: list[Candidate] = []
    swaps = []
    for enc, result in zip(encoded, packed):
        cand = enc.planned.cand
        dtype = result.header.dtype
        if enc.action is Action.LOSSLESS and len(result.blob) >= cand.numel * dtype.numpy.itemsize:
            kept_late.append(Candidate(cand.name, cand.elem_type, cand.shape, Action.KEEP, "incompressible", cand.kind))
            continue
        reports.append(TensorReport(
            name=cand.name, shape=cand.shape, dtype=dtype.name, action=enc.action,
            original_bytes=cand.numel * dtype.numpy.itemsize, blob_bytes=len(result.blob),
            entropy_bits=result.entropy_bits, step=result.header.step, sqnr_db=enc.sqnr_db,
        ))
        swaps.append((enc.planned.source, result.blob, dtype))
    replace_weights(plan.model, swaps)
    report = CompressReport(tensors=reports, kept=plan.kept + kept_late, original_model_bytes=plan.original_bytes,
                            compressed_model_bytes=proto_size(plan.model))
    return plan.model, report


def _pack(enc: EncodedTensor, coder: str):
    try:
        return pack(enc.quantized, coder)
    except UdcError as exc:
        raise type(exc)(f"{enc.name}: {exc}") from None


def compress_model(
    model: onnx.ModelProto,
    config: CompressConfig | None = None,
    *,
    inplace: bool = False,
    progress: Callable[[int], object] | None = None,
) -> tuple[onnx.ModelProto, CompressReport]:
    """Fixed settings: plan every selected weight from ``config``, encode each once, swap
    it for a decode node; return the model and a report. ``progress(n)`` is called with
    the number of weights done after each tensor."""
    plan = make_plan(model, config or CompressConfig(), inplace=inplace)
    encoded, packed = encode_and_pack(plan, progress=progress)
    return write(plan, encoded, packed)


def encode_and_pack(plan: Plan, *, progress: Callable[[int], object] | None = None
                    ) -> tuple[list[EncodedTensor], list[EncodeResult]]:
    """Each planned tensor quantized and entropy-coded by one worker, its symbols dropped as
    soon as it is coded: what stays in memory is the blobs (and the model), not every
    tensor's symbols at once. ``EncodedTensor.quantized`` is None in the result."""

    def one(t: PlannedTensor) -> tuple[EncodedTensor, EncodeResult]:
        enc = encode_one(t)
        result = _pack(enc, plan.coder)
        enc.quantized = None  # type: ignore[assignment]  # coded: the symbols go
        return enc, result

    encoded, packed = [], []
    with ThreadPoolExecutor(max_workers=plan.threads or os.cpu_count() or 1) as pool:
        for enc, result in pool.map(one, plan.tensors):
            encoded.append(enc)
            packed.append(result)
            if progress:
                progress(enc.planned.cand.numel)
    return encoded, packed
