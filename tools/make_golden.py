#!/usr/bin/env python3
"""Regenerate tests/golden/: blobs and the exact bytes every decoder must produce.

Only run this when FORMAT.md changes (with a new format version): the point of the
golden vectors is that they do NOT change. Each case is <name>.blob (the blob) and
<name>.bin (the decoded tensor's raw little-endian bytes); manifest.json lists dtype,
shape and a SHA-256 of both files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onnx_udc import coders, quantizers  # noqa: E402
from onnx_udc.codec import decode_blob, encode_tensor  # noqa: E402
from onnx_udc.format import BlobHeader, CoderId, DType, pack_blob, parse_blob  # noqa: E402
from onnx_udc.quantizers.pq import PQConfig, PQFit, block_count  # noqa: E402
from onnx_udc.quantizers.scalar import ScalarConfig  # noqa: E402
from onnx_udc.quantizers.lattice import LatticeConfig  # noqa: E402
from onnx_udc.quantizers.scalar_channel import ChannelConfig  # noqa: E402

OUT = ROOT / "tests" / "golden"


def cases():
    rng = np.random.default_rng(20261130)
    # scalar quantizer, float32, one-byte symbols, brotli
    yield "f32_w1_brotli", rng.standard_normal((7, 13)).astype(np.float32), "scalar", "brotli", ScalarConfig(0.3), 1
    # two-byte symbols, stored (no entropy coding), odd 3-D shape
    yield "f32_w2_store", rng.laplace(size=(3, 5, 17)).astype(np.float32), "scalar", "store", ScalarConfig(0.01), 2
    # four-byte symbols and |q| > 2^24, where float32(q) itself rounds
    big = np.concatenate([rng.standard_normal(40), [3.0e7, -2.9e7, 1.7e7 + 1, 65536.5]]).astype(np.float32)
    yield "f32_w4_brotli", big, "scalar", "brotli", ScalarConfig(3e-8), 3
    # float16 output: rounding past 65504 overflows to infinity ...
    near_max = np.concatenate([rng.uniform(65400, 65504, 60), -rng.uniform(65400, 65504, 20)]).astype(np.float16)
    yield "f16_overflow_w2", near_max, "scalar", "brotli", ScalarConfig(0.002), 4
    # ... and tiny values become subnormals or signed zeros
    tiny = (rng.standard_normal(300) * 3e-6).astype(np.float16)
    yield "f16_subnormal_w2", tiny, "scalar", "brotli", ScalarConfig(0.004), 7
    yield "f16_w1_store", rng.standard_normal((4, 4, 3, 3)).astype(np.float16), "scalar", "store", ScalarConfig(0.5), 5
    # a 0-d tensor
    yield "f32_scalar_0d", np.array(1.25, dtype=np.float32), "scalar", "brotli", ScalarConfig(0.1), 6
    # lossless (raw) blobs of every element type
    yield "raw_int8_brotli", np.clip(np.rint(rng.standard_normal((16, 24)) * 20), -128, 127).astype(np.int8), "raw", "brotli", None, 0
    yield "raw_uint8_store", rng.integers(0, 256, (5, 7)).astype(np.uint8), "raw", "store", None, 0
    yield "raw_int32_brotli", rng.integers(-(2**31), 2**31 - 1, 33).astype(np.int32), "raw", "brotli", None, 0
    yield "raw_f32_store", rng.standard_normal((2, 9)).astype(np.float32), "raw", "store", None, 0
    yield "raw_f16_brotli", rng.standard_normal(31).astype(np.float16), "raw", "brotli", None, 0
    yield "raw_empty", np.zeros((0, 4), dtype=np.float32), "raw", "brotli", None, 0
    # coder 2, range (FORMAT.md 5.2): every symbol width, both quantizers, an empty tensor
    yield "f32_w1_range", rng.standard_normal((9, 31)).astype(np.float32), "scalar", "range", ScalarConfig(0.2), 11
    yield "f32_w2_range", rng.laplace(size=(4, 6, 25)).astype(np.float32), "scalar", "range", ScalarConfig(0.01), 12
    big = np.concatenate([rng.standard_normal(60), [3.0e7, -2.9e7, 1.7e7 + 1, -65536.5]]).astype(np.float32)
    yield "f32_w4_range", big, "scalar", "range", ScalarConfig(3e-8), 13
    yield "f16_w2_range", (rng.standard_normal((5, 40)) * 0.05).astype(np.float16), "scalar", "range", ScalarConfig(0.02), 14
    yield "raw_int8_range", np.clip(np.rint(rng.standard_normal((12, 20)) * 9), -128, 127).astype(np.int8), "raw", "range", None, 0
    yield "raw_empty_range", np.zeros((3, 0), dtype=np.float16), "raw", "range", None, 0
    yield from rans_cases(np.random.default_rng(20261204))
    yield from pq_cases(np.random.default_rng(20261205))


def period_cases():
    """Range blobs whose payload carries a vector period > 1 (what lattice quantizers set)."""
    rng = np.random.default_rng(20261201)
    w = (rng.laplace(size=(24, 8)) * np.array([0.3, 1, 3, 10, 0.3, 1, 3, 10])).astype(np.float32)
    yield "f32_period4_range", w, 4


def wide_period_cases():
    """Range blobs with the extended header (FORMAT.md 5.2): a row period above 255, chosen by
    the encoder because each column (input feature) has its own scale."""
    rng = np.random.default_rng(20261207)
    scales = np.exp(rng.uniform(-2.5, 2.5, 300))
    yield "f32_rowperiod300_range", (rng.laplace(size=(7, 300)) * scales).astype(np.float32), 300
    yield "f32_rowperiod300_w2_range", (rng.standard_normal((5, 300)) * scales * 40).astype(np.float32), 300


def period_blob(weights: np.ndarray, period: int, row: int = 0) -> bytes:
    """A scalar-quantized blob coded by the range coder with the given context period (and row hint)."""
    q = quantizers.by_name("scalar")
    encoded = q.encode(weights, ScalarConfig(0.05), 21)
    payload = coders.by_name("range").encode(encoded.symbols, encoded.symbol_width, period, row=row)
    assert row <= 255 or payload[:2] == b"\x00\x01", "the encoder did not pick the row period"
    header = BlobHeader(quantizer=q.id, coder=CoderId.RANGE, dtype=DType.from_numpy(weights.dtype),
                        shape=weights.shape, symbol_width=encoded.symbol_width, step=encoded.step,
                        seed=encoded.seed)
    return pack_blob(header, payload)


# ---- lattice quantizers (FORMAT.md 4.2-4.6) and codeword tables ---------------------------
def with_table(blob: bytes, rows: list[int], seed: int) -> bytes:
    """The blob with a codeword table for the vectors ``rows`` (arbitrary nearby values)."""
    import dataclasses

    from onnx_udc import coders, quantizers
    from onnx_udc.format import pack_blob, parse_blob
    from onnx_udc.quantizers import codewords
    from onnx_udc.format.symbols import unzigzag

    header, payload = parse_blob(blob)
    quantizer = quantizers.by_id(header.quantizer)
    n = quantizer.lattice.n if hasattr(quantizer, "lattice") else 1
    symbols = coders.by_id(header.coder).decode(payload, header.numel, header.symbol_width)  # uint [numel]
    symbols = symbols[: header.numel // n * n].reshape(-1, n)
    keys = np.unique(symbols[rows].astype(np.uint32), axis=0)  # [K, n] sorted
    signed = unzigzag(keys.reshape(-1)).astype(np.int64).reshape(keys.shape)
    points = quantizer.lattice.from_signed(signed) if n > 1 else signed
    offsets = np.random.default_rng(seed).uniform(-0.5, 0.5, keys.shape)
    table = codewords.CodewordTable(keys, (points + offsets).astype(np.float32))
    prefix = header.params[: len(header.shape)] if n > 1 else b""
    return pack_blob(dataclasses.replace(header, params=prefix + codewords.pack(table)), bytes(payload))


def lattice_cases():
    """(name, array, quantizer, coder, config, seed, post) for the lattices and tables."""
    rng = np.random.default_rng(20261201)
    for q in quantizers.lattices():  # every registered lattice
        # float32, one-byte symbols, an odd size (tail), identity axis order
        yield f"{q}_f32_w1_brotli", rng.standard_normal((7, 13)).astype(np.float32), q, "brotli", \
            LatticeConfig(step_rel=0.3), 11, None
        # float16, two-byte symbols, a non-identity axis order, stored
        yield f"{q}_f16_w2_order_store", rng.laplace(size=(6, 5, 7)).astype(np.float16), q, "store", \
            LatticeConfig(step_rel=0.01, axis_order=(2, 0, 1)), 12, None
        # four-byte symbols (float32(P) rounds) and a codeword table
        big = np.concatenate([rng.standard_normal(37), [3.0e7, -2.9e7, 1.7e7 + 1, 65536.5]]).astype(np.float32)
        yield f"{q}_f32_w4_table_brotli", big.reshape(1, 41), q, "brotli", LatticeConfig(step_rel=3e-8), 13, \
            lambda blob: with_table(blob, [0, 2, 4], 1)
        # a table at a coarse step on a MatMul-like weight grouped along K
        yield f"{q}_f32_w1_table_matmul", rng.standard_normal((24, 10)).astype(np.float32), q, "brotli", \
            LatticeConfig(step_rel=1.2, axis_order=(1, 0)), 14, lambda blob: with_table(blob, [0, 1, 5, 9], 2)
    # a 0-d tensor: the whole tensor is the scalar tail
    yield "e8_f32_0d", np.array(-0.75, dtype=np.float32), "e8", "brotli", LatticeConfig(step_rel=0.1), 15, None
    # the scalar quantizer with a codeword table
    yield "scalar_table_f32_w1", rng.standard_normal((40, 50)).astype(np.float32), "scalar", "brotli", \
        ScalarConfig(1.5), 16, lambda blob: with_table(blob, [0, 3, 17, 40, 41], 3)


def position_model_cases():
    """Range blobs with the extended header's variant 2 (FORMAT.md 5.2: a model set per vector
    position), which the encoder picks for D4 indices (their last coordinate is halved)."""
    rng = np.random.default_rng(20261208)
    yield "d4_f32_w1_posmodels_range", rng.standard_normal((64, 64)).astype(np.float32), "d4", "range", \
        LatticeConfig(step_rel=0.5), 17, None
    yield "d4_f16_w2_posmodels_range", (rng.standard_normal((64, 128)) * 0.1).astype(np.float16), "d4", "range", \
        LatticeConfig(step_rel=0.004, axis_order=(1, 0)), 18, None


def pq_fit(rng, shape, order, d, k, special=()):
    """A fixed codebook and assignment (golden vectors do not depend on the fitting)."""
    numel = int(np.prod(shape))
    table = rng.standard_normal((k, d)).astype(np.float16)
    table.reshape(-1)[: len(special)] = np.array(special, dtype=np.float16)
    return PQFit(order=order, d=d, centroids=table, indices=rng.integers(0, k, block_count(numel, d)))


def pq_cases(rng):
    """Product quantization (FORMAT.md 4.7): additive block, existing vectors unchanged."""
    # conv 3x3 blocks of 9, identity order, one-byte indices, brotli
    fit = pq_fit(rng, (6, 4, 3, 3), (0, 1, 2, 3), 9, 16)
    yield "pq_f32_conv_d9_brotli", np.zeros((6, 4, 3, 3), np.float32), "pq", "brotli", PQConfig(fit=fit), 0
    # MatMul [K, N] read along K (order 1, 0), a padded tail block (35 = 8*4 + 3), store
    fit = pq_fit(rng, (7, 5), (1, 0), 4, 5)
    yield "pq_f32_matmul_tail_store", np.zeros((7, 5), np.float32), "pq", "store", PQConfig(fit=fit), 0
    # two-byte indices (k = 300), 3-D order (2, 0, 1), float16 output, brotli
    fit = pq_fit(rng, (5, 6, 40), (2, 0, 1), 8, 300)
    yield "pq_f16_k300_w2_brotli", np.zeros((5, 6, 40), np.float16), "pq", "brotli", PQConfig(fit=fit), 0
    # float32 of special halves: subnormals, signed zeros, largest finite, infinities
    special = [6e-8, -6e-8, -0.0, 0.0, 65504.0, -65504.0, np.inf, -np.inf, 1e-5, -3e-5, 2.0**-14]
    fit = pq_fit(rng, (3, 11), (0, 1), 11, 2, special)
    yield "pq_f32_half_specials_store", np.zeros((3, 11), np.float32), "pq", "store", PQConfig(fit=fit), 0


def channel_cases():
    """The per-channel scalar quantizer (FORMAT.md 4.8): channel ranges over seven decades."""
    rng = np.random.default_rng(20261210)

    def spread(shape, axis, lo=-4.0, hi=3.0):  # channel c scaled by 10^(lo .. hi)
        scale = np.logspace(lo, hi, shape[axis]).reshape([-1 if a == axis else 1 for a in range(len(shape))])
        return rng.standard_normal(shape) * scale

    # depthwise conv [C, 1, 3, 3] along axis 0, one-byte symbols, a channel of zeros, brotli
    w = spread((8, 1, 3, 3), 0)
    w[5] = 0.0
    yield "chan_f32_w1_axis0_brotli", w.astype(np.float32), "scalar_channel", "brotli", \
        ChannelConfig(step_rel=0.3, axis=0), 31
    # float16, two-byte symbols, a middle axis, stored
    w = spread((4, 6, 5), 1, -4.0, 2.0)
    w[:, 2] = 0.0
    yield "chan_f16_w2_midaxis_store", w.astype(np.float16), "scalar_channel", "store", \
        ChannelConfig(step_rel=0.01, axis=1), 32
    # four-byte symbols (|q| > 2^24: float32(q) rounds), the last axis (MatMul N), brotli
    w = spread((6, 7), 1)
    w[0] = [3.0e7, -2.9e7, 1.7e7 + 1, 65536.5, 1.0, -1.0, 0.5]
    yield "chan_f32_w4_lastaxis_brotli", w.astype(np.float32), "scalar_channel", "brotli", \
        ChannelConfig(step_rel=3e-8, axis=1), 33
    # float16, one-byte symbols, the last axis of a 4-D tensor, stored
    yield "chan_f16_w1_lastaxis_store", spread((2, 3, 4, 5), 3, -3.0, 3.0).astype(np.float16), "scalar_channel", \
        "store", ChannelConfig(step_rel=0.5, axis=3), 34
    # two-byte symbols coded by the range coder (row period), axis 0
    yield "chan_f32_w2_range", spread((5, 40), 0).astype(np.float32), "scalar_channel", "range", \
        ChannelConfig(step_rel=0.01, axis=0), 35


# ---- padded payloads (FORMAT.md 2, flags bit 0) --------------------------------------------
def with_padding(blob: bytes, pad: int) -> bytes:
    """The blob with its payload padded by ``pad`` zero bytes and the pad count (flags bit 0),
    which pack_blob writes only where the expansion limit needs it."""
    from onnx_udc.format import FLAG_PADDED, crc32

    header, payload = parse_blob(blob)
    out = bytearray(blob[: len(blob) - len(payload)]) + payload + bytes(pad) + struct.pack("<I", pad)
    out[11] |= FLAG_PADDED
    struct.pack_into("<Q", out, 32, len(payload) + pad + 4)
    struct.pack_into("<I", out, 12, crc32(out))
    return bytes(out)


def rans_cases(rng):
    """Coder 3, rans (FORMAT.md 5.3): every symbol width, raw and lattice symbols, an empty
    tensor, and a tensor of 2^15+ symbols (8 lanes, several contexts, rows of other scales)."""
    yield "f32_w1_rans", rng.standard_normal((9, 31)).astype(np.float32), "scalar", "rans", ScalarConfig(0.2), 31
    yield "f32_w2_rans", rng.laplace(size=(4, 6, 25)).astype(np.float32), "scalar", "rans", ScalarConfig(0.01), 32
    big = np.concatenate([rng.standard_normal(60), [3.0e7, -2.9e7, 1.7e7 + 1, -65536.5]]).astype(np.float32)
    yield "f32_w4_rans", big, "scalar", "rans", ScalarConfig(3e-8), 33
    yield "f16_w2_rans", (rng.standard_normal((5, 40)) * 0.05).astype(np.float16), "scalar", "rans", ScalarConfig(0.02), 34
    yield "raw_int8_rans", np.clip(np.rint(rng.standard_normal((12, 20)) * 9), -128, 127).astype(np.int8), "raw", "rans", None, 0
    yield "raw_empty_rans", np.zeros((3, 0), dtype=np.float16), "raw", "rans", None, 0
    yield "d4_f32_w1_rans", rng.standard_normal((16, 64)).astype(np.float32), "d4", "rans", ScalarConfig(0.3), 35
    scales = np.exp(rng.normal(0.0, 1.0, size=(160, 1)))
    rows = (rng.standard_normal((160, 256)) * scales).astype(np.float32)
    yield "f32_lanes8_rans", rows, "scalar", "rans", ScalarConfig(0.1), 36


def padded_cases():
    rng = np.random.default_rng(20261203)
    w = rng.standard_normal((6, 11)).astype(np.float32)
    yield "f32_w1_range_padded", with_padding(encode_tensor(w, "scalar", "range", ScalarConfig(0.2), 21).blob, 13)
    q = np.clip(np.rint(rng.standard_normal(40) * 9), -128, 127).astype(np.int8)
    yield "raw_int8_brotli_padded0", with_padding(encode_tensor(q, "raw", "brotli", None, 0).blob, 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the vectors (default: tests/golden)")
    out = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    every = [(*case, None) for case in cases()] + list(lattice_cases()) + list(position_model_cases())
    every += [(*case, None) for case in channel_cases()]
    blobs = []
    for name, array, quantizer, coder, config, seed, post in every:
        blob = encode_tensor(array, quantizer=quantizer, coder=coder, config=config, seed=seed).blob
        blobs.append((name, blob if post is None else post(blob)))
    blobs += [(name, period_blob(array, period)) for name, array, period in period_cases()]
    blobs += [(name, period_blob(array, 1, row)) for name, array, row in wide_period_cases()]
    blobs += list(padded_cases())
    for name, blob in blobs:
        assert "posmodels" not in name or parse_blob(blob)[1][:2] == b"\x00\x02", f"{name}: variant 2 not picked"
    for name, blob in blobs:
        decoded = decode_blob(blob)
        (out / f"{name}.blob").write_bytes(blob)
        (out / f"{name}.bin").write_bytes(decoded.tobytes())
        manifest.append({
            "name": name, "dtype": str(decoded.dtype), "shape": list(decoded.shape),
            "blob_sha256": hashlib.sha256(blob).hexdigest(),
            "decoded_sha256": hashlib.sha256(decoded.tobytes()).hexdigest(),
        })
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(manifest)} golden vectors to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
