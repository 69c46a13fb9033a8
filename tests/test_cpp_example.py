"""The C++ example udc_run (runtime/examples/udc_run) on deployment-shaped models: a
multi-input encoder (token ids + mask) and a stateful streaming cell (state + scalar
sample rate), both load paths, outputs identical to the Python fast loader's; its errors;
and the example built on its own against installed onnx-udc and onnxruntime."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from models import synthetic
from onnx_udc import CompressConfig, InferenceSession, compress_model

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "runtime" / "build"
EXE = BUILD / "examples" / "udc_run" / "udc_run"

pytestmark = pytest.mark.usefixtures("library")


@pytest.fixture(scope="module")
def udc_run():
    if not EXE.exists():
        pytest.fail("udc_run was not built (runtime/CMakeLists.txt builds it when onnxruntime is found)")
    return str(EXE)


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, **kw)


def python_fast_outputs(path: Path, feeds: dict) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = InferenceSession(str(path), options)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


CASES = {
    "tiny_bert": (synthetic.tiny_bert, synthetic.tiny_bert_inputs),
    "stateful_rnn": (synthetic.stateful_rnn, synthetic.stateful_rnn_inputs),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request, tmp_path_factory):
    make, inputs = CASES[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    model = make()
    compressed, report = compress_model(model, CompressConfig(min_elements=1024, seed=5))
    assert report.tensors
    onnx.save_model(model, folder / "orig.onnx")
    onnx.save_model(compressed, folder / "m.udc.onnx")
    feeds = inputs(np.random.default_rng(1))
    (folder / "in").mkdir()
    for name, value in feeds.items():
        np.save(folder / "in" / f"{name}.npy", value)
    return folder, feeds


def test_both_paths_match_python_fast_loader_exactly(case, udc_run):
    folder, feeds = case
    out = folder / "out"
    out.mkdir(exist_ok=True)
    pairs = []
    for name in feeds:
        pairs += ["-i", f"{name}={folder / 'in' / (name + '.npy')}"]
    r = run(udc_run, folder / "m.udc.onnx", *pairs, "--original", folder / "orig.onnx", "--load", "both",
            "--threads", "1", "--runs", "3", "--save-outputs", out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "fast" in r.stdout and "portable" in r.stdout and "original" in r.stdout
    expected = python_fast_outputs(folder / "m.udc.onnx", feeds)
    for name, value in expected.items():
        saved = np.load(out / f"{name}.npy")
        assert saved.dtype == value.dtype and saved.shape == value.shape
        assert saved.tobytes() == value.tobytes(), f"{name}: udc_run fast path differs from the Python fast loader"


def test_inputs_from_a_folder_and_a_manifest(case, udc_run):
    folder, feeds = case
    r = run(udc_run, folder / "m.udc.onnx", "--inputs", folder / "in", "--runs", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    manifest = folder / "inputs.txt"
    manifest.write_text("# name file\n" + "".join(f"{n} in/{n}.npy\n" for n in feeds))
    r = run(udc_run, folder / "m.udc.onnx", "--manifest", manifest, "--runs", "0", "--load", "portable")
    assert r.returncode == 0, r.stdout + r.stderr


def test_list_shows_every_input(case, udc_run):
    folder, feeds = case
    r = run(udc_run, folder / "m.udc.onnx", "--list")
    assert r.returncode == 0
    for name in feeds:
        assert name in r.stdout


def test_atol_fails_when_outputs_differ(case, udc_run):
    folder, _ = case
    r = run(udc_run, folder / "m.udc.onnx", "--inputs", folder / "in", "--original", folder / "orig.onnx",
            "--atol", "0", "--runs", "0")
    assert r.returncode == 1, r.stdout + r.stderr  # lossy weights: not bit-identical to the original
    assert "> atol" in r.stdout


def test_help_and_usage_errors(udc_run, tmp_path):
    r = run(udc_run, "--help")
    assert r.returncode == 0 and "usage: udc_run MODEL.onnx" in r.stdout and "--original" in r.stdout
    r = run(udc_run)
    assert r.returncode == 2 and "no model given" in r.stderr
    r = run(udc_run, "m.onnx", "--bogus")
    assert r.returncode == 2 and "unknown option --bogus" in r.stderr
    r = run(udc_run, tmp_path / "missing.onnx")
    assert r.returncode == 3 and "cannot open model file" in r.stderr and r.stderr.count("\n") == 1


def test_input_errors_name_the_input(case, udc_run, tmp_path):
    folder, feeds = case
    first = next(iter(feeds))
    r = run(udc_run, folder / "m.udc.onnx", "--runs", "0")
    assert r.returncode == 2 and "no data for these inputs" in r.stderr and first in r.stderr
    np.save(tmp_path / "wrong.npy", np.zeros((1, 2), np.float64))
    r = run(udc_run, folder / "m.udc.onnx", "--inputs", folder / "in", "-i", f"{first}={tmp_path / 'wrong.npy'}")
    assert r.returncode == 3 and f"input {first}" in r.stderr and "float64" in r.stderr


def test_corrupt_blob_is_a_clear_error(case, udc_run, tmp_path):
    folder, _ = case
    model = onnx.load(folder / "m.udc.onnx")
    blob = next(i for i in model.graph.initializer if i.name.endswith("__udc_blob"))
    data = bytearray(blob.raw_data)
    data[-1] ^= 0xFF
    blob.raw_data = bytes(data)
    onnx.save_model(model, tmp_path / "bad.onnx")
    for load in ("fast", "portable"):
        r = run(udc_run, tmp_path / "bad.onnx", "--inputs", folder / "in", "--load", load)
        assert r.returncode == 3, r.stdout + r.stderr
        assert "CHECKSUM_MISMATCH" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_example_builds_on_its_own(tmp_path, case):
    """runtime/examples/udc_run against an installed onnx-udc (cmake --install) and an
    installed onnxruntime (headers + library in a prefix, as Debian or a release archive
    lays them out), found by find_path/find_library, not by runtime/'s own build."""
    cmake = shutil.which("cmake")
    assert cmake, "cmake is needed to build the runtime"
    udc_prefix = tmp_path / "udc"
    for component in ("runtime", "dev"):
        r = run(cmake, "--install", BUILD, "--prefix", udc_prefix, "--component", component)
        assert r.returncode == 0, r.stdout + r.stderr
    headers = next(BUILD.glob("_deps/onnxruntime-headers/usr/include/onnxruntime"))
    ort_prefix = tmp_path / "onnxruntime"
    (ort_prefix / "lib").mkdir(parents=True)
    shutil.copytree(headers, ort_prefix / "include")
    lib = next(Path(ort.__file__).parent.glob("capi/libonnxruntime.so.*"))
    for name in ("libonnxruntime.so", "libonnxruntime.so.1"):
        os.symlink(lib, ort_prefix / "lib" / name)
    build = tmp_path / "build"
    r = run(cmake, "-S", ROOT / "runtime" / "examples" / "udc_run", "-B", build, f"-DONNX_UDC_ROOT={udc_prefix}",
            f"-DONNXRUNTIME_ROOT={ort_prefix}", "-DCMAKE_BUILD_TYPE=Release")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run(cmake, "--build", build, "-j", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    folder, _ = case
    r = run(build / "udc_run", folder / "m.udc.onnx", "--inputs", folder / "in", "--load", "both", "--runs", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    needed = run("readelf", "-d", build / "udc_run").stdout
    assert "libonnx_udc.so" in needed and "libonnxruntime.so.1" in needed


def test_output_cap_and_hostile_npy(case, udc_run, tmp_path):
    folder, feeds = case
    for load in ("fast", "portable"):
        r = run(udc_run, folder / "m.udc.onnx", "--inputs", folder / "in", "--load", load, "--max-output-bytes", "1000")
        assert r.returncode == 3 and "LIMIT_EXCEEDED" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    # a header declaring 2^64 elements over 16 bytes: refused before anything is allocated
    first = next(iter(feeds))
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"
    header += b" " * (117 - len(header)) + b"\n"
    (tmp_path / "huge.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(16))
    r = run(udc_run, folder / "m.udc.onnx", "--inputs", folder / "in", "-i", f"{first}={tmp_path / 'huge.npy'}")
    assert r.returncode == 3 and "fewer than its shape" in r.stderr, r.stderr
    r = run(udc_run, folder / "m.udc.onnx", "--inputs", folder / "in", "--atol", "0")
    assert r.returncode == 2 and "--atol compares against --original" in r.stderr
