#!/usr/bin/env python3
"""Regenerate tests/golden/: blobs and the exact bytes every decoder must produce.

Only run this when FORMAT.md changes (with a new format version): the point of the
golden vectors is that they do NOT change. Each case is <name>.blob (the blob) and
<name>.bin (the decoded tensor's raw little-endian bytes); manifest.json lists dtype,
shape and a SHA-256 of both files.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onnx_udc.codec import decode_blob, encode_tensor  # noqa: E402
from onnx_udc.quantizers.pq import PQConfig, PQFit, block_count  # noqa: E402
from onnx_udc.quantizers.scalar import ScalarConfig  # noqa: E402

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
    yield from pq_cases(np.random.default_rng(20261205))


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


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = []
    for name, array, quantizer, coder, config, seed in cases():
        blob = encode_tensor(array, quantizer=quantizer, coder=coder, config=config, seed=seed).blob
        decoded = decode_blob(blob)
        (OUT / f"{name}.blob").write_bytes(blob)
        (OUT / f"{name}.bin").write_bytes(decoded.tobytes())
        manifest.append({
            "name": name, "dtype": str(decoded.dtype), "shape": list(decoded.shape),
            "blob_sha256": hashlib.sha256(blob).hexdigest(),
            "decoded_sha256": hashlib.sha256(decoded.tobytes()).hexdigest(),
        })
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(manifest)} golden vectors to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
