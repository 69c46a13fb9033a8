"""Quantizer 1: dithered uniform scalar quantization, the lattice Z (FORMAT.md 4.1).

    w [numel] --(+ d*step, /step, round)--> q int [numel] --zigzag--> symbols [numel]
    symbols --unzigzag--> q --(float32(q) - d) * step--> w_hat (float32, then float16)
    params: empty, or a codeword table (codewords.py): (table[s] - d) * step where s is in it

With subtractive dither the error w_hat - w is uniform on [-step/2, step/2) and
independent of the weights, whatever their distribution (Choi et al., "Universal Deep
Neural Network Compression").

The numpy code here is the reference. For float32 weights the codes, the error energy of
the exact decode (decode_error) and the symbol counts come from the native library's
kernels when it has them (onnx_udc.native.NativeScalar, runtime/src/encode/scalar_quantize.h):
the same values in one pass each; $ONNX_UDC_REFERENCE_QUANTIZE=1 forces the reference.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

from ..format.dither import dither
from ..errors import ConfigError, FormatError
from ..format import BlobHeader, DType, QuantizerId
from ..format.symbols import unzigzag, width_for, zigzag
from . import codewords
from .base import register
from .base import DEFAULT_STEP_REL, Encoded, Quantizer, StepConfig

_MAX_INDEX = (1 << 31) - 1
# Set (to anything but "" or "0"): the numpy reference below even where the native kernels
# could run (benchmarks and tests compare the two; the bytes are the same).
REFERENCE_ENV = "ONNX_UDC_REFERENCE_QUANTIZE"
__all__ = ["DEFAULT_STEP_REL", "ScalarConfig", "ScalarQuantizer", "StepConfig"]


# The step configuration is shared by every step-based quantizer (scalar and lattices).
ScalarConfig = StepConfig


def _overflow(step: float) -> ConfigError:
    return ConfigError(f"step {step:g} is too small for this tensor: indices overflow 32 bits")


def indices(w: np.ndarray, step: float, d: np.ndarray) -> np.ndarray:
    """w float [numel], dither d float32 [numel] -> q int64 [numel] = round(w/step + d).

    The reference: binary64 division and addition, np.rint (ties to even). Raises
    ConfigError when an index would not fit 32 bits (the step is too small)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        q = np.rint(w.astype(np.float64) / float(step) + d.astype(np.float64))  # float64 [numel]
    if q.size and not (np.all(np.isfinite(q)) and float(np.abs(q).max()) <= _MAX_INDEX):
        raise _overflow(step)
    return q.astype(np.int64)


@functools.cache
def _kernels():
    from ..errors import RuntimeLibraryError
    from ..native import native_scalar

    try:
        return native_scalar()
    except RuntimeLibraryError:
        return None


def native_kernels():
    """The native float32 kernels (onnx_udc.native.NativeScalar), or None: no library, a
    library without them, or $ONNX_UDC_REFERENCE_QUANTIZE set. Without them every value comes
    from the numpy code of this module; with them, the same values."""
    if os.environ.get(REFERENCE_ENV, "") not in ("", "0"):
        return None
    return _kernels()


def entropy_bits(q: np.ndarray) -> float:
    """Empirical order-0 entropy of integer indices, bits per symbol."""
    if q.size == 0:
        return 0.0
    counts = np.bincount((q - q.min()).astype(np.int64))
    p = counts[counts > 0] / q.size
    return float(-(p * np.log2(p)).sum())


CHUNK = 1 << 20  # elements per piece of the chunked encode (bounds its float64 temporaries)


def _rms(flat: np.ndarray) -> float:
    """sqrt(mean(w^2)) in float64, a chunk at a time (einsum's float64 sum of products: each
    term exact for float32 and float16 weights, no float64 copy, no BLAS threads)."""
    if not flat.size:
        return 0.0
    total = 0.0
    for start in range(0, flat.size, CHUNK):
        piece = flat[start : start + CHUNK]
        total += float(np.einsum("i,i->", piece, piece, dtype=np.float64))
    return math.sqrt(total / flat.size)


def _reconstruct(a: np.ndarray, d: np.ndarray, header: BlobHeader) -> np.ndarray:
    """Codewords a float32 [n] and their dither d float32 [n] -> elements [n] of the header's
    dtype: (a - d) * step in binary32 (FORMAT.md 4.1)."""
    w = (a - d) * np.float32(header.step)  # float32 [n]
    with np.errstate(over="ignore"):  # overflow to +-inf is the defined float16 result
        return w.astype(header.dtype.numpy)


def _width_bound(flat: np.ndarray, step: float) -> int:
    """A code width that holds every code of float32 ``flat`` at ``step``: |q| <= max|w| /
    step + 1 (the dither and the rounding add at most 1), code <= 2 |q|."""
    if not flat.size:
        return 1
    top = max(abs(float(flat.max())), abs(float(flat.min())))
    bound = 2.0 * (top / step + 1.0) + 1.0
    return width_for(int(bound)) if math.isfinite(bound) and bound < 2.0**32 else 4


def _codes_native(kernels, flat: np.ndarray, step: float, seed: int) -> tuple[np.ndarray, int]:
    """_codes_chunked's result from the native kernel: one pass over float32 ``flat``, the
    codes written in a width that holds them (narrowed when the bound was loose)."""
    width = _width_bound(flat, step)
    codes, top, overflow = kernels.codes(flat, step, seed, width)
    if overflow:
        raise _overflow(step)
    need = width_for(top)
    if codes is None:  # cannot happen with the bound above; kept exact anyway
        width = need
        codes, top, overflow = kernels.codes(flat, step, seed, width)
    return (codes if need == width else codes.astype(np.dtype(f"<u{need}"))), need


def _codes_chunked(flat: np.ndarray, step: float, seed: int) -> tuple[np.ndarray, int]:
    """w [numel] -> (zigzag codes in the narrowest width, width): the same values as
    zigzag(indices(w, step, dither)), computed CHUNK elements at a time into uint32 (about 4
    bytes per weight in flight instead of about 36); float32 weights go through the native
    kernel when it is there (native_kernels: the same codes)."""
    from ..format.dither import dither_chunk

    kernels = native_kernels()
    if kernels is not None and flat.dtype == np.float32 and 0 <= seed < (1 << 64):  # else: the reference's error
        return _codes_native(kernels, flat, step, seed)

    codes = np.empty(flat.size, dtype=np.uint32)  # [numel]
    top = 0
    for start in range(0, flat.size, CHUNK):
        count = min(CHUNK, flat.size - start)
        q = indices(flat[start : start + count], step, dither_chunk(seed, start, count))  # int64 [count]
        z = zigzag(q)  # uint64 [count]; |q| <= 2^31 - 1, so z < 2^32
        top = max(top, int(z.max()))
        codes[start : start + count] = z
    width = width_for(top)
    return (codes if width == 4 else codes.astype(np.dtype(f"<u{width}"))), width


def solve_step(w: np.ndarray, d: np.ndarray, target_bpw: float, rms: float) -> float:
    """Step whose indices have an empirical entropy of about ``target_bpw`` bits.

    Bisection on log2(step): entropy falls monotonically (up to sampling noise) as the
    step grows. High-rate theory, H ~ h(W) - log2(step), gives the bracket.
    """
    sample = w if w.size <= (1 << 20) else w[:: max(1, w.size >> 20)]
    d_sample = d if w.size <= (1 << 20) else d[:: max(1, w.size >> 20)]
    lo, hi = math.log2(rms) - 30.0, math.log2(rms) + 8.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        try:
            too_fine = entropy_bits(indices(sample, 2.0**mid, d_sample)) > target_bpw
        except ConfigError:  # indices overflow: far too fine
            too_fine = True
        if too_fine:
            lo = mid
        else:
            hi = mid
    return 2.0 ** (0.5 * (lo + hi))


@register
class ScalarQuantizer(Quantizer):
    id = QuantizerId.SCALAR
    name = "scalar"
    has_step = True
    dtypes = frozenset({DType.FLOAT, DType.FLOAT16})

    def noise_power(self, step: float) -> float:
        return step * step / 12.0

    def check(self, header: BlobHeader) -> None:
        self.check_dtype_and_width(header, (1, 2, 4))
        if not (math.isfinite(header.step) and header.step > 0):
            raise FormatError(f"scalar quantizer needs a finite step > 0, got {header.step}")
        if header.params:
            codewords.parse(header.params, 1)

    def encode(self, weights: np.ndarray, config: ScalarConfig, seed: int) -> Encoded:
        flat = np.asarray(weights).reshape(-1)  # [numel], the caller's dtype
        rms = _rms(flat)
        if not (rms > 0 and math.isfinite(rms)):
            raise ConfigError("scalar quantizer needs a finite, non-zero tensor (use raw)")
        if config.step is not None:
            step = config.step
        elif config.target_bpw is not None:
            w = flat.astype(np.float64)
            step = solve_step(w, dither(seed, w.size), config.target_bpw, rms)
            del w
        else:
            step = config.step_rel * rms
        step = float(np.float32(step))
        if not (step > 0 and math.isfinite(step) and np.float32(step) >= np.finfo(np.float32).tiny):
            raise ConfigError(f"the step ({step:g}) is not a normal positive float32: the tensor's scale is out of range")
        if config.refine:
            w = flat.astype(np.float64)
            d = dither(seed, w.size)  # float32 [numel]
            q = indices(w, step, d)  # int64 [numel]
            codes = zigzag(q)  # uint64 [numel]
            width = width_for(int(codes.max()) if codes.size else 0)
            y = (w / step + d.astype(np.float64))[:, None]  # [numel, 1] dithered weight in steps
            table = codewords.refine(codes[:, None], y, q.astype(np.float32).astype(np.float64)[:, None],
                                     np.array([step]), self.noise_power(step), config.refine_max)
            params = codewords.pack(table) if table.size else b""
            return Encoded(symbols=codes, symbol_width=width, step=step, seed=seed, params=params)
        codes, width = _codes_chunked(flat, step, seed)
        return Encoded(symbols=codes, symbol_width=width, step=step, seed=seed)

    def decode_error(self, header: BlobHeader, symbols: np.ndarray, weights: np.ndarray) -> tuple[float, float] | None:
        kernels = native_kernels()
        w = np.asarray(weights)
        if (kernels is None or header.params or header.dtype is not DType.FLOAT or w.dtype != np.float32
                or w.size != header.numel or symbols.size != header.numel
                or symbols.dtype not in (np.uint8, np.uint16, np.uint32)):
            return None
        return kernels.error(w.reshape(-1), symbols.reshape(-1), header.step, header.seed)

    def table_layout(self, header: BlobHeader) -> codewords.TableLayout:
        table = codewords.parse(header.params, 1) if header.params else codewords.empty(1)
        return codewords.TableLayout(
            n=1, order=tuple(range(len(header.shape))), scales=np.array([np.float32(header.step)], np.float64),
            table=table, points=lambda codes: unzigzag(codes.reshape(-1)).astype(np.float32).reshape(codes.shape),
            pack=lambda t: codewords.pack(t) if t.size else b"",
        )

    def decode_pieces(self, header: BlobHeader, symbols: np.ndarray):
        if header.params:  # a codeword table: one piece
            yield self.decode(header, symbols)
            return
        from ..format.dither import dither_chunk

        flat = symbols.reshape(-1)
        for start in range(0, header.numel, CHUNK):
            count = min(CHUNK, header.numel - start)
            yield _reconstruct(unzigzag(flat[start : start + count]).astype(np.float32),
                               dither_chunk(header.seed, start, count), header)

    def decode(self, header: BlobHeader, symbols: np.ndarray) -> np.ndarray:
        a = unzigzag(symbols).astype(np.float32)  # [numel] the codewords: float32(q) ...
        if header.params:  # ... or the table's refined values
            table = codewords.parse(header.params, 1)
            rows = codewords.lookup(table, symbols.reshape(-1, 1))  # [numel]
            a[rows >= 0] = table.values[rows[rows >= 0], 0]
        return _reconstruct(a, dither(header.seed, header.numel), header)
