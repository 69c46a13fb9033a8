"""Compress a list of models (a zoo) on a Ray cluster: one Ray task per model.

    python tools/ray_zoo.py MODEL.onnx ... --out-dir DIR [--step-rel 0.05] [--coder brotli]
                            [--address ADDR] [--cpus-per-model 1]

Each task loads its model with deferred external data (read a tensor at a time), runs the
fixed-step encode on that worker's threads and writes ``DIR/<name>.udc.onnx``: the bytes a
local ``onnx-udc compress MODEL -o ... --step-rel S --coder C`` writes. Paths must be
visible to every node (a shared file system), as for any Ray job reading files. Needs Ray
(``pip install onnx-udc[ray]``); without ``--address`` a local instance is started.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def compress_one(src: str, out: str, step_rel: float, coder: str, threads: int) -> dict:
    """One model, fixed steps: the summary of its report (or the one-line error)."""
    from onnx_udc.encoder import CompressConfig, compress_model
    from onnx_udc.errors import UdcError
    from onnx_udc.graph.modelio import load_model, save_model
    from onnx_udc.quantizers.scalar import ScalarConfig

    try:
        config = CompressConfig(scalar=ScalarConfig(step_rel=step_rel), coder=coder, threads=threads)
        model, report = compress_model(load_model(src, defer_external=True), config, inplace=True)
        save_model(model, out)
    except UdcError as exc:
        return {"model": src, "error": f"{type(exc).__name__}: {exc}"}
    return {"model": src, "output": out, "tensors": len(report.tensors), "original": report.original_model_bytes,
            "compressed": report.compressed_model_bytes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--step-rel", type=float, default=0.05)
    parser.add_argument("--coder", default="brotli")
    parser.add_argument("--address", default=None, help="ray.init's address (default: a local instance)")
    parser.add_argument("--cpus-per-model", type=int, default=1, help="CPUs (and encode threads) of each task")
    args = parser.parse_args(argv)
    try:
        import ray
    except ImportError:
        print("ray_zoo: error: needs Ray: pip install onnx-udc[ray]", file=sys.stderr)
        return 2
    args.out_dir.mkdir(parents=True, exist_ok=True)
    ray.init(address=args.address, include_dashboard=False, log_to_driver=False, logging_level="warning")
    try:
        task = ray.remote(num_cpus=args.cpus_per_model)(compress_one)
        refs = [task.remote(str(m.resolve()), str((args.out_dir / (m.stem + ".udc.onnx")).resolve()), args.step_rel,
                            args.coder, args.cpus_per_model) for m in args.models]
        results = ray.get(refs)
    finally:
        ray.shutdown()
    failed = 0
    for r in results:
        if "error" in r:
            failed += 1
            print(f"{r['model']}: {r['error']}")
        else:
            print(f"{r['model']}: {r['tensors']} tensors, {r['original']:,} -> {r['compressed']:,} bytes "
                  f"({r['original'] / max(r['compressed'], 1):.2f}x) -> {r['output']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
