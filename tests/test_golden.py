"""Golden vectors: every decoder reproduces the committed bytes exactly (FORMAT.md)."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from onnx_udc import decode_blob

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = json.loads((GOLDEN / "manifest.json").read_text())


def load(case):
    blob = (GOLDEN / f"{case['name']}.blob").read_bytes()
    expected = (GOLDEN / f"{case['name']}.bin").read_bytes()
    assert hashlib.sha256(blob).hexdigest() == case["blob_sha256"], "golden blob file changed"
    assert hashlib.sha256(expected).hexdigest() == case["decoded_sha256"], "golden output file changed"
    return blob, expected


def test_manifest_covers_every_quantizer_coder_and_dtype():
    names = {c["name"] for c in CASES}
    assert len(names) >= 12
    assert {c["dtype"] for c in CASES} >= {"float32", "float16", "int8", "uint8", "int32"}
    assert any("store" in n for n in names) and any("brotli" in n for n in names)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_python_reference_decoder(case):
    blob, expected = load(case)
    out = decode_blob(blob)
    assert str(out.dtype) == case["dtype"] and list(out.shape) == case["shape"]
    assert out.tobytes() == expected


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_native_decoder(case, library):
    from onnx_udc.native import NativeDecoder

    blob, expected = load(case)
    out = NativeDecoder(library).decode(blob)
    assert str(out.dtype) == case["dtype"] and list(out.shape) == case["shape"]
    assert out.tobytes() == expected


def test_float16_edge_cases_are_really_in_the_vectors():
    blob, expected = load(next(c for c in CASES if c["name"] == "f16_overflow_w2"))
    assert np.isinf(np.frombuffer(expected, np.float16)).any()
    blob, expected = load(next(c for c in CASES if c["name"] == "f16_subnormal_w2"))
    x = np.frombuffer(expected, np.float16)
    assert ((x != 0) & (np.abs(x) < np.float16(6.104e-5))).any() and np.signbit(x[x == 0]).any()
