"""Hostile blobs: what every decoder does with a small, valid-CRC blob that declares a huge
tensor (issue 17: memory bounded by what the blob can justify).

For every quantizer x coder pair an honest (8, 64) float32 blob is encoded, then its
shape is enlarged so that it declares ``--numel`` elements (the params stay consistent:
only the outer dimension grows) and the checksum is recomputed. Each such blob goes to

  native    the C API (udc_decode through onnx_udc.native),
  reference the Python reference decoder (onnx_udc.codec.decode_blob),
  ort       an onnxruntime session of a one-node model holding it, library registered,
  cli       ``onnx-udc decompress`` of that model (exit code and first line).

Each measurement runs in its own process, whose peak RSS (ru_maxrss) is reported next to
the message. Output: a markdown table (``--out``) and a JSON list on stdout.

    python tools/hostile_blobs.py --out docs/results/hostile_blobs.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUANTIZERS = ("raw", "scalar", "a2", "d4", "e8", "pq", "scalar_channel")
CODERS = ("store", "brotli", "range", "rans")
PATHS = ("native", "reference", "ort", "cli")


def honest_blob(quantizer: str, coder: str) -> bytes:
    import numpy as np

    from onnx_udc.codec import encode_tensor
    from onnx_udc.quantizers.pq import PQConfig, PQFit, block_count
    from onnx_udc.quantizers.scalar import ScalarConfig

    rng = np.random.default_rng(7)
    w = rng.standard_normal((8, 64)).astype(np.float32)
    fit = PQFit(order=(0, 1), d=8, centroids=rng.standard_normal((16, 8)).astype(np.float16),
                indices=rng.integers(0, 16, block_count(w.size, 8)))
    config = {"scalar": ScalarConfig(0.2), "pq": PQConfig(fit=fit)}.get(quantizer)
    return encode_tensor(w, quantizer=quantizer, coder=coder, config=config, seed=1).blob


def hostile_blob(quantizer: str, coder: str, numel: int) -> bytes:
    """The honest blob declaring shape (numel // 64, 64), checksum recomputed."""
    from onnx_udc.format import crc32

    blob = bytearray(honest_blob(quantizer, coder))
    struct.pack_into("<Q", blob, 40, max(1, numel // 64))
    struct.pack_into("<I", blob, 12, crc32(blob))
    return bytes(blob)


def one_node_model(blob: bytes):
    import onnx
    import onnx.numpy_helper
    from onnx import helper as h

    import numpy as np

    from onnx_udc.format import BLOB_SUFFIX, DOMAIN, DOMAIN_VERSION

    init = onnx.numpy_helper.from_array(np.frombuffer(blob, dtype=np.uint8), "W" + BLOB_SUFFIX)
    node = h.make_node("Decode", ["W" + BLOB_SUFFIX], ["W"], domain=DOMAIN, name="decode_W")
    out = h.make_tensor_value_info("W", onnx.TensorProto.FLOAT, None)
    graph = h.make_graph([node], "hostile", [], [out], initializer=[init])
    opsets = [h.make_opsetid("", 17), h.make_opsetid(DOMAIN, DOMAIN_VERSION)]
    return h.make_model(graph, opset_imports=opsets, ir_version=8)


def measure(path: str, blob: bytes) -> dict:
    """Runs in the child: decode the blob one way; status and message."""
    try:
        if path == "native":
            from onnx_udc.native import native_decoder

            native_decoder().decode(blob)
        elif path == "reference":
            from onnx_udc.codec import decode_blob

            decode_blob(blob)
        elif path == "ort":
            import onnxruntime as ort

            from onnx_udc.load.session import session_options

            ort.set_default_logger_severity(4)
            model = one_node_model(blob)
            ort.InferenceSession(model.SerializeToString(), session_options(), providers=["CPUExecutionProvider"])
        else:
            raise ValueError(path)
    except Exception as exc:  # noqa: BLE001 - the point is to report what each decoder raises
        return {"ok": False, "error": type(exc).__name__, "message": str(exc).strip().splitlines()[0][:200]}
    return {"ok": True, "error": "", "message": "decoded"}


def run_cli(blob: bytes) -> dict:
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "hostile.udc.onnx"
        onnx.save(one_node_model(blob), src)
        dst = Path(tmp) / "out.onnx"
        proc = subprocess.run(
            [sys.executable, "-c", _CLI_CHILD, str(src), str(dst)], capture_output=True, text=True, timeout=600
        )
        last = proc.stdout.strip().splitlines()[-1].split() if proc.stdout.strip() else ["0", "-1"]
        rss_kb, code = int(last[0]), int(last[1])
        lines = proc.stderr.strip().splitlines()
        return {"ok": int(code) == 0, "error": f"exit {code}", "message": (lines[-1] if lines else "")[:200],
                "peak_rss_mb": int(rss_kb) / 1024, "written": dst.exists()}


_CLI_CHILD = """
import resource, subprocess, sys
p = subprocess.run([sys.executable, '-m', 'onnx_udc.cli', 'decompress', sys.argv[1], '-o', sys.argv[2]],
                   capture_output=True, text=True)
sys.stderr.write(p.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode)
"""

_CHILD = """
import json, resource, sys
sys.path.insert(0, {root!r})
from tools.hostile_blobs import measure
blob = open(sys.argv[2], 'rb').read()
import onnx_udc.codec, onnx_udc.native  # imports before the baseline
if sys.argv[1] == 'ort':
    import onnxruntime, onnx
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = measure(sys.argv[1], blob)
result['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
result['base_rss_mb'] = base / 1024
print(json.dumps(result))
"""


def run_case(path: str, blob: bytes) -> dict:
    if path == "cli":
        return run_cli(blob)
    with tempfile.NamedTemporaryFile(suffix=".blob", delete=False) as f:
        f.write(blob)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD.format(root=str(ROOT)), path, f.name],
            capture_output=True, text=True, timeout=600,
        )
    finally:
        os.unlink(f.name)
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"ok": False, "error": f"child exit {proc.returncode}", "message": tail[:200], "peak_rss_mb": -1}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--numel", type=int, default=1 << 28, help="declared elements (default 2^28)")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated: " + ",".join(PATHS))
    parser.add_argument("--quantizers", default=",".join(QUANTIZERS))
    parser.add_argument("--coders", default=",".join(CODERS))
    parser.add_argument("--out", type=Path, help="write the markdown table here")
    args = parser.parse_args(argv)
    rows = []
    for q in args.quantizers.split(","):
        for c in args.coders.split(","):
            blob = hostile_blob(q, c, args.numel)
            for path in args.paths.split(","):
                r = run_case(path, blob)
                r.update(quantizer=q, coder=c, path=path, blob_bytes=len(blob), declared_bytes=args.numel * 4)
                rows.append(r)
                print(json.dumps(r), flush=True)
    if args.out:
        lines = [
            "# Hostile blobs: declared size, peak RSS, message",
            "",
            "Regenerate: `python tools/hostile_blobs.py --out docs/results/hostile_blobs.md`",
            "",
            f"Each blob is an honest (8, 64) float32 blob whose shape was enlarged to declare {args.numel} "
            f"elements ({args.numel * 4} bytes), checksum recomputed. Peak RSS is the measuring process's "
            "ru_maxrss (for cli: the `onnx-udc decompress` process), against about 65-74 MB for the "
            "imports alone.",
            "",
            "| quantizer | coder | blob bytes | path | result | peak RSS MB | message |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            msg = r["message"].replace("|", "\\|")
            result = "DECODED" if r["ok"] else r["error"]
            lines.append(f"| {r['quantizer']} | {r['coder']} | {r['blob_bytes']} | {r['path']} | {result} | "
                         f"{r['peak_rss_mb']:.0f} | {msg} |")
        args.out.write_text("\n".join(lines) + "\n")
    return 1 if any(r["ok"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
