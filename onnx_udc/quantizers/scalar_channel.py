"""Quantizer 6: dithered uniform scalar quantization with one step per channel (FORMAT.md 4.8).

    encode: s = the tensor's step (StepConfig, as for scalar), axis = the output axis
            s_c = float32(s * max(rms_c / rms, 2^-12))            [C]  one step per channel
            q_i = round(w_i / s_c(i) + d_i)  (scalar.indices)    --zigzag--> symbols [numel]
    decode: w_i = (float32(q_i) - d_i) * s_c(i)   binary32, then float16 (scalar's formula)
    params: axis u8 | s_c f32 [C]   (no codeword table); header.step = s

Depthwise and BN-folded kernels have per-channel ranges spanning orders of magnitude;
one step per tensor drowns the small channels. The channel steps follow the channels'
RMS, so the mean squared error over the tensor stays s^2 / 12 (the mean of
(rms_c / rms)^2 over equally sized channels is 1): rate allocation sees the same
noise_power(step) as for scalar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from ..errors import ConfigError, FormatError
from ..format import BlobHeader, DType, QuantizerId
from ..format.dither import dither
from ..format.symbols import unzigzag, width_for, zigzag
from .base import Encoded, Quantizer, StepConfig, register
from .scalar import indices, solve_step

MIN_REL = 2.0**-12  # a channel's step is at least this fraction of the tensor's
_TINY = float(np.finfo(np.float32).tiny)  # smallest normal binary32


@dataclass(frozen=True)
class ChannelConfig(StepConfig):
    """StepConfig (the tensor's step s) plus the channel axis (None: axis 0)."""

    axis: int | None = None


def valid_step(x: float) -> bool:
    """A channel step a blob may carry: finite, positive, a normal binary32."""
    return math.isfinite(x) and x >= _TINY


def pack_params(axis: int, steps: np.ndarray) -> bytes:
    return bytes([axis]) + np.ascontiguousarray(steps, dtype="<f4").tobytes()


def parse_params(header: BlobHeader) -> tuple[int, np.ndarray]:
    """Validate and read (axis, steps float32 [C]); FormatError(BAD_HEADER) on any fault."""
    p, ndim = header.params, len(header.shape)
    if len(p) < 1:
        raise FormatError("scalar_channel params are empty, need the axis and one step per channel")
    axis = p[0]
    if axis >= ndim:
        raise FormatError(f"scalar_channel axis {axis} is not below ndim {ndim}")
    channels = header.shape[axis]
    if len(p) != 1 + 4 * channels:
        raise FormatError(f"scalar_channel params have {len(p)} bytes, {channels} channels need {1 + 4 * channels}")
    steps = np.frombuffer(p, dtype="<f4", count=channels, offset=1)  # [C]
    bad = ~(np.isfinite(steps) & (steps >= np.float32(_TINY)))
    if bad.any():
        c = int(np.argmax(bad))
        raise FormatError(f"scalar_channel step {float(steps[c])!r} of channel {c} is not a finite, positive, "
                          "normal float32")
    return axis, steps


def channel_of_elements(shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Channel index of every element in row-major order: int64 [numel], (i / R) mod C."""
    inner = math.prod(shape[axis + 1:])
    channels = shape[axis]
    numel = math.prod(shape)
    return (np.arange(numel, dtype=np.int64) // inner) % max(channels, 1)


def channel_rms(w: np.ndarray, axis: int) -> np.ndarray:
    """RMS of each channel along ``axis``: float64 [C]."""
    moved = np.moveaxis(np.asarray(w, dtype=np.float64), axis, 0).reshape(w.shape[axis], -1)  # [C, numel / C]
    return np.sqrt(np.mean(moved * moved, axis=1)) if moved.shape[1] else np.zeros(moved.shape[0])


@register
class ScalarChannelQuantizer(Quantizer):
    id = QuantizerId.SCALAR_CHANNEL
    name = "scalar_channel"
    uses_axis_order = True
    has_step = True
    dtypes = frozenset({DType.FLOAT, DType.FLOAT16})

    def noise_power(self, step: float) -> float:
        """Mean over the tensor: the channel steps' squares average to step^2 (see encode)."""
        return step * step / 12.0

    def tensor_config(self, config: object, axis_order: tuple[int, ...]) -> object:
        """Channels along the output axis (axis_order[0]) unless the config names an axis."""
        if config is None:
            config = ChannelConfig()
        if getattr(config, "axis", None) is not None or not axis_order:
            return config
        shared = {f.name: getattr(config, f.name) for f in fields(StepConfig)}
        return ChannelConfig(**shared, axis=int(axis_order[0]))

    def check(self, header: BlobHeader) -> None:
        self.check_dtype_and_width(header, (1, 2, 4))
        if not (math.isfinite(header.step) and header.step > 0):
            raise FormatError(f"scalar_channel quantizer needs a finite step > 0, got {header.step}")
        parse_params(header)

    def encode(self, weights: np.ndarray, config: StepConfig | None, seed: int) -> Encoded:
        config = ChannelConfig() if config is None else config
        if not isinstance(config, StepConfig):
            raise ConfigError(f"scalar_channel takes a StepConfig / ChannelConfig, got {type(config).__name__}")
        if config.refine:
            raise ConfigError("scalar_channel has no codeword table (refine): use scalar or a lattice")
        w_nd = np.asarray(weights)
        if w_nd.ndim == 0:
            raise ConfigError("scalar_channel needs a tensor with at least one axis (use scalar)")
        axis = getattr(config, "axis", None)
        axis = 0 if axis is None else int(axis)
        if not 0 <= axis < w_nd.ndim:
            raise ConfigError(f"scalar_channel axis {axis} is not an axis of a {w_nd.ndim}-D tensor")
        w = w_nd.reshape(-1).astype(np.float64)  # [numel]
        rms = math.sqrt(float(np.mean(w * w))) if w.size else 0.0
        if not (rms > 0 and math.isfinite(rms)):
            raise ConfigError("scalar_channel quantizer needs a finite, non-zero tensor (use raw)")
        rel = np.maximum(channel_rms(w_nd, axis) / rms, MIN_REL)  # float64 [C]
        chan = channel_of_elements(w_nd.shape, axis)  # [numel]
        d = dither(seed, w.size)  # float32 [numel]
        if config.step is not None:
            step = config.step
        elif config.target_bpw is not None:
            step = solve_step(w / rel[chan], d, config.target_bpw, rms)  # channel-normalised weights
        else:
            step = config.step_rel * rms
        step = float(np.float32(step))
        with np.errstate(over="ignore", under="ignore"):
            steps = (step * rel).astype(np.float32)  # [C]
        if not (valid_step(step) and all(valid_step(float(s)) for s in steps)):
            raise ConfigError(f"a step of scalar_channel (tensor step {step:g}, channel steps "
                              f"{float(steps.min()):g}..{float(steps.max()):g}) is not a normal positive float32: "
                              "the tensor's scale is out of range")
        try:  # round(w / s_c + d): scalar's index function on w / s_c (division by 1 is exact)
            q = indices(w / steps.astype(np.float64)[chan], 1.0, d)  # int64 [numel]
        except ConfigError:
            raise ConfigError(f"step {step:g} is too small for this tensor: scalar_channel indices overflow 32 bits") \
                from None
        codes = zigzag(q)  # uint64 [numel]
        width = width_for(int(codes.max()) if codes.size else 0)
        return Encoded(symbols=codes, symbol_width=width, step=step, seed=seed, params=pack_params(axis, steps))

    def decode(self, header: BlobHeader, symbols: np.ndarray) -> np.ndarray:
        axis, steps = parse_params(header)
        a = unzigzag(symbols).astype(np.float32)  # [numel] float32(q)
        step = steps[channel_of_elements(header.shape, axis)]  # float32 [numel]
        with np.errstate(over="ignore"):  # overflow to +-inf is the defined result (float32 and float16)
            w = (a - dither(header.seed, header.numel)) * step  # float32 [numel]
            return w.astype(header.dtype.numpy)
