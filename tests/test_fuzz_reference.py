"""Property fuzzing of the Python reference decoder against the C++ decoder (hypothesis):
mutants of the golden vectors, checksum recomputed, must either fail in both with a typed
error (never another exception) or decode to identical bytes in both."""

import subprocess
import sys
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from onnx_udc.codec import decode_blob  # noqa: E402
from onnx_udc.errors import UdcError  # noqa: E402

from blobs import reseal  # noqa: E402

GOLDEN = sorted((Path(__file__).resolve().parent / "golden").glob("*.blob"))
SEEDS = [p.read_bytes() for p in GOLDEN if p.stat().st_size <= 4096]



edits = st.lists(
    st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]), st.integers(0, 1 << 16),
              st.integers(0, 255)),
    min_size=1, max_size=4,
)


def mutate(blob: bytes, ops) -> bytes:
    b = bytearray(blob)
    for op, where, value in ops:
        at = where % max(1, min(len(b), 64 if where & 1 else len(b)))  # half of them in the header
        if op == "flip" and b:
            b[at] ^= 1 << (value % 8)
        elif op == "set" and b:
            b[at] = value
        elif op == "insert":
            b.insert(at, value)
        elif op == "delete" and b:
            del b[at]
        elif op == "truncate":
            del b[at:]
    return reseal(b) if len(b) >= 16 else bytes(b)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(range(len(SEEDS))), ops=edits)
def test_reference_and_native_agree_on_mutated_blobs(native, seed, ops):
    blob = mutate(SEEDS[seed], ops)
    try:
        ref = decode_blob(blob)
    except UdcError as exc:
        ref = exc
    try:
        nat = native.decode(blob)
    except UdcError as exc:
        nat = exc
    if isinstance(ref, Exception) or isinstance(nat, Exception):
        assert isinstance(ref, Exception) and isinstance(nat, Exception), (ref, nat)
        return
    assert ref.dtype == nat.dtype and ref.shape == nat.shape
    assert ref.tobytes() == nat.tobytes()  # bit-exact, 0-d tensors included


def test_fast_loader_fuzz_smoke(tmp_path, library):
    """The fast target's body (runtime/fuzz/fuzz_fast.cc: the C fast loader on untrusted
    model bytes) over its seed models and fixed-seed mutants of them: no abort, no crash."""
    root = Path(__file__).resolve().parents[1]
    exe = root / "runtime" / "build" / "udc_fuzz_fast_replay"
    if not exe.exists():
        pytest.fail(f"{exe} was not built (runtime/CMakeLists.txt udc_add_fuzz_target)")
    sys.path.insert(0, str(root / "tools"))
    import fuzz

    seeds = fuzz.fast_seeds()
    for name, data in seeds.items():
        (tmp_path / name).write_bytes(data)
    r = subprocess.run([str(exe), "--mutate", "200", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
