"""Faults (issue 17): a compress or decompress killed at any point leaves under the final name
either nothing or the complete output (byte-identical to an uninterrupted run), and the next
run removes the staging folder the killed one left; compress is deterministic whatever the
thread count; many threads running sessions of one compressed model agree with a reference
run and do not grow the process."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

import modelzoo
from onnx_udc.cli import main
from onnx_udc.graph.modelio import STAGING_TAG

ROOT = Path(__file__).resolve().parents[1]
# compress with the store coder: the write is most of the time after the imports
COMPRESS = ["-q", "--step-rel", "0.05", "--coder", "store"]


def chain(layers: int, dim: int, seed: int = 0) -> onnx.ModelProto:
    """x @ W0 @ W1 ... : ``layers`` float32 [dim, dim] weights (4 * dim^2 bytes each)."""
    rng = np.random.default_rng(seed)
    inits, nodes, x = [], [], "x"
    for i in range(layers):
        inits.append(nh.from_array((rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32), f"w{i}"))
        nodes.append(h.make_node("MatMul", [x, f"w{i}"], [f"h{i}"], name=f"mm{i}"))
        x = f"h{i}"
    graph = h.make_graph(nodes, "chain", [h.make_tensor_value_info("x", T.FLOAT, ["N", dim])],
                         [h.make_tensor_value_info(x, T.FLOAT, ["N", dim])], inits)
    return modelzoo._model(graph)


def _cli(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A 32 MB model, its compressed form and the reference outputs of both commands."""
    folder = tmp_path_factory.mktemp("big")
    src, packed, dense = folder / "big.onnx", folder / "big.udc.onnx", folder / "big.dense.onnx"
    onnx.save_model(chain(8, 1024), str(src))
    assert _cli("compress", src, "-o", packed, *COMPRESS) == 0
    assert _cli("decompress", packed, "-o", dense) == 0
    return {"compress": (src, packed.read_bytes()), "decompress": (packed, dense.read_bytes())}


def _argv(command: str, source: Path, out: Path) -> list[str]:
    return [command, str(source), "-o", str(out), *(COMPRESS if command == "compress" else [])]


def _staging(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if STAGING_TAG in p.name)


def _start(argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "onnx_udc.cli", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_when(proc: subprocess.Popen, folder: Path, delay: float | None, sig=signal.SIGKILL,
               after_staging: float = 0.0) -> str:
    """Send ``sig`` ``delay`` seconds after the start, or (delay None) ``after_staging``
    seconds after a staging folder appears in ``folder``; what happened: 'staging', 'delay'
    or 'finished' (it ended first)."""
    start, seen = time.monotonic(), None
    while proc.poll() is None:
        now = time.monotonic()
        if delay is None and seen is None and _staging(folder):
            seen = now
        if (seen is not None and now - seen >= after_staging) or (delay is not None and now - start >= delay):
            proc.send_signal(sig)
            proc.wait()
            return "staging" if delay is None else "delay"
        time.sleep(0.0005)
    return "finished"


def _check_kill(big, tmp_path, command: str, delay: float | None, after_staging: float = 0.0) -> dict:
    """One kill -9: the final output is absent or complete, then a new run cleans up and
    writes the reference bytes. Returns what was seen."""
    source, reference = big[command]
    out_dir = tmp_path / f"{command}-{delay}-{after_staging}"
    out_dir.mkdir(parents=True)
    out = out_dir / "out.onnx"
    proc = _start(_argv(command, source, out))
    when = _kill_when(proc, out_dir, delay, after_staging=after_staging)
    seen = {"when": when, "code": proc.returncode, "stale": _staging(out_dir), "output": out.exists()}
    if out.exists():  # the rename happened: the whole file, the reference bytes
        assert out.read_bytes() == reference, seen
        onnx.checker.check_model(onnx.load(str(out)))
    assert sorted(p.name for p in out_dir.iterdir() if STAGING_TAG not in p.name) in ([], ["out.onnx"]), seen
    assert _cli(*_argv(command, source, out)) == 0
    assert out.read_bytes() == reference
    assert sorted(p.name for p in out_dir.iterdir()) == ["out.onnx"], seen  # the stale staging is gone
    return seen


@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_kill_9_while_writing_leaves_no_partial_output(big, tmp_path, command):
    """Killed the moment its staging folder appears (the write under way): nothing under the
    final name, a stale staging folder that the next run removes. (A run that ends before the
    poll sees its staging folder proves nothing: tried again, three times at most.)"""
    for attempt in range(3):
        seen = _check_kill(big, tmp_path / str(attempt), command, None)
        if seen["when"] == "staging":
            break
    assert seen["when"] == "staging", seen
    assert seen["output"] or seen["stale"], seen  # killed before the rename: its staging folder stayed


def test_sigterm_while_writing_removes_the_staging_folder(big, tmp_path):
    source, reference = big["decompress"]
    out = tmp_path / "out.onnx"
    proc = _start(_argv("decompress", source, out))
    when = _kill_when(proc, tmp_path, None, signal.SIGTERM)
    stderr = proc.stderr.read().decode()
    assert proc.returncode in (0, 143), stderr
    if when == "staging" and proc.returncode == 143:
        assert stderr.strip() == "onnx-udc: terminated"
    assert _staging(tmp_path) == []  # removed by the process itself, not a later run
    assert not out.exists() or out.read_bytes() == reference


@pytest.mark.slow
@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_kill_9_at_many_points(big, tmp_path, command):
    """Kills from import time to the end of the run (about 2-4 s on two cores: 0.2 ... 3.5 s
    after the start), then within the write (0 ... 0.2 s after the staging folder appears)."""
    whens = [_check_kill(big, tmp_path, command, delay)["when"] for delay in (0.2, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5)]
    whens += [_check_kill(big, tmp_path, command, None, after)["when"] for after in (0.0, 0.005, 0.02, 0.05, 0.1, 0.2)]
    assert "delay" in whens and "staging" in whens  # kills landed before the write and during it


# ---- determinism ------------------------------------------------------------------------------
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("mode", [["--step-rel", "0.1", "--coder", "brotli"], ["--step-rel", "0.1", "--coder", "range"],
                                  ["--target-ratio", "8", "--coder", "range"]],
                         ids=["fixed-brotli", "fixed-range", "allocation"])
def test_compress_is_deterministic_for_any_thread_count(tmp_path, mode):
    src = tmp_path / "m.onnx"
    onnx.save_model(chain(4, 256), str(src))
    digests = {}
    for threads in (["--threads", "1"], ["--threads", "2"], [], ["--threads", "1"]):
        out = tmp_path / f"out{len(digests)}.onnx"
        assert _cli("compress", src, "-o", out, "-q", *mode, *threads) == 0
        digests[f"{len(digests)}:{' '.join(threads) or 'default'}"] = _digest(out)
    assert len(set(digests.values())) == 1, digests


# ---- concurrency ------------------------------------------------------------------------------
def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.parametrize("shared", [False, True], ids=["session-per-thread-fast", "one-shared-session-custom-op"])
def test_threads_running_one_compressed_model(tmp_path, shared, library):
    """8 threads x 50 runs: own fast-loaded sessions, or one portable (custom-op) session
    shared by all; every output equals the reference; RSS after the runs within 64 MB of
    RSS after a warm-up round."""
    import onnxruntime as ort

    from onnx_udc.load.session import InferenceSession

    src, packed = tmp_path / "m.onnx", tmp_path / "m.udc.onnx"
    onnx.save_model(chain(4, 256), str(src))
    assert _cli("compress", src, "-o", packed, "-q", "--step-rel", "0.05") == 0

    def session():
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        return InferenceSession(str(packed), options, fast=not shared)

    feeds = [{"x": np.random.default_rng(i).standard_normal((4, 256)).astype(np.float32)} for i in range(5)]
    reference = [session().run(None, f)[0] for f in feeds]
    threads, runs = 8, 50
    one = session() if shared else None
    sessions = [one if shared else session() for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)
    wrong: list[str] = []

    def work(t: int, rounds: range) -> None:
        for r in rounds:
            i = (t + r) % len(feeds)
            out = sessions[t].run(None, feeds[i])[0]
            if not np.array_equal(out, reference[i]):
                wrong.append(f"thread {t} run {r}: max diff {np.abs(out - reference[i]).max()}")

    def phase(rounds: range) -> None:
        pool = [threading.Thread(target=lambda t=t: (barrier.wait(), work(t, rounds))) for t in range(threads)]
        for p in pool:
            p.start()
        barrier.wait()
        for p in pool:
            p.join()

    phase(range(5))  # warm-up: arenas and caches reach their size
    warm = _rss_mb()
    phase(range(5, runs))
    grown = _rss_mb() - warm
    assert not wrong, wrong[:5]
    assert grown < 64, f"RSS grew {grown:.1f} MB over {threads * (runs - 5)} runs"
