"""Memory bounded by the blob (FORMAT.md section 2, expansion limit and padded payloads):
hostile valid-CRC blobs of every quantizer/coder pair fail with a clear error before anything
large is allocated; honest blobs of near-constant tensors are padded and still decode."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from onnx_udc.codec import decode_blob, encode_tensor
from onnx_udc.errors import FormatError, LimitError
from onnx_udc.format import EXPANSION_FREE, EXPANSION_RATIO, FLAG_PADDED, expansion_limit, parse_blob
from onnx_udc.quantizers.scalar import ScalarConfig

from blobs import reseal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools import hostile_blobs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]



@pytest.mark.parametrize("coder", ["brotli", "range"])
def test_constant_tensor_is_padded_to_its_expansion_limit_and_decodes(coder, native):
    w = np.zeros((1024, 2048), np.float32)  # 8 MiB of zeros, lossless: a few bytes of payload
    blob = encode_tensor(w, "raw", coder).blob
    header, payload = parse_blob(blob)
    assert header.flags & FLAG_PADDED
    assert header.nbytes <= expansion_limit(len(blob)) < header.nbytes + EXPANSION_RATIO  # the shortest allowed
    assert len(payload) < 100  # what the coder sees excludes the padding
    np.testing.assert_array_equal(decode_blob(blob), w)
    np.testing.assert_array_equal(native.decode(blob), w)


def test_ordinary_blobs_are_not_padded():
    w = np.random.default_rng(0).standard_normal((1024, 2048)).astype(np.float32)
    header, _ = parse_blob(encode_tensor(w, "scalar", "range", ScalarConfig(0.2)).blob)
    assert header.flags == 0
    small = np.full(EXPANSION_FREE // 4, 1.5, np.float32)  # within the free allowance
    assert parse_blob(encode_tensor(small, "scalar", "range", ScalarConfig(0.2)).blob)[0].flags == 0


def _padded(blob: bytes, pad: bytes) -> bytes:
    out = bytearray(blob) + pad
    out[11] |= FLAG_PADDED
    out[32:40] = (int.from_bytes(out[32:40], "little") + len(pad)).to_bytes(8, "little")
    return reseal(out)


@pytest.mark.parametrize("pad, ok", [
    (bytes(5) + (5).to_bytes(4, "little"), True),
    ((0).to_bytes(4, "little"), True),
    (bytes([0, 1, 0]) + (3).to_bytes(4, "little"), False),  # a pad byte is not 0
    (bytes(2) + (3).to_bytes(4, "little"), False),  # the count is past the payload
])
def test_padded_payload_rules_agree_in_both_decoders(pad, ok, native):
    w = np.random.default_rng(1).standard_normal((5, 7)).astype(np.float32)
    blob = _padded(encode_tensor(w, "scalar", "range", ScalarConfig(0.3)).blob, pad)
    if ok:
        np.testing.assert_array_equal(native.decode(blob), decode_blob(blob))
        return
    with pytest.raises(FormatError):
        decode_blob(blob)
    with pytest.raises(FormatError):
        native.decode(blob)


_CHILD = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from tools.hostile_blobs import CODERS, QUANTIZERS, hostile_blob, measure
import onnxruntime
blobs = [(q, c, hostile_blob(q, c, 1 << 28)) for q in QUANTIZERS for c in CODERS]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows = [(q, c, path, measure(path, blob)) for q, c, blob in blobs for path in ("native", "reference", "ort")]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grew_mb": (peak - base) / 1024, "rows": rows}))
"""


def test_hostile_blobs_fail_clearly_without_allocating_their_declared_size():
    """Each blob is a few hundred bytes declaring 1 GiB: native, reference and onnxruntime
    session creation must all fail with a one-line error, and the process must not grow."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(result["rows"]) == 7 * len(hostile_blobs.CODERS) * 3
    for q, c, path, r in result["rows"]:
        assert not r["ok"], (q, c, path)
        assert r["error"] in ("LimitError", "FormatError", "RuntimeException"), (q, c, path, r)
        assert "LIMIT_EXCEEDED" in r["message"] or "limit" in r["message"] or "BAD_HEADER" in r["message"], r
    assert result["grew_mb"] < 64, result["grew_mb"]


def test_expansion_limit_is_checked_on_symbol_bytes_too(native):
    """float16 output from four-byte symbols: the symbol stream is the larger buffer, and a
    blob whose tensor fits its limit but whose symbols do not is refused."""
    blob = bytearray(encode_tensor(np.ones(16, np.float16), "scalar", "store", ScalarConfig(0.2)).blob)
    blob[10] = 4
    n = expansion_limit(len(blob)) // 4 + 1  # 2n bytes of tensor fit, 4n bytes of symbols do not
    blob[40:48] = n.to_bytes(8, "little")
    blob = reseal(blob)
    with pytest.raises(LimitError, match="expansion limit"):
        parse_blob(blob)
    with pytest.raises(LimitError, match="expansion limit"):
        native.decode(blob)
