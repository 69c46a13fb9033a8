"""Measure the default and fixed-step onnx-udc compressions of the derived zoo entries
(docs/research/zoo2.md, "Zoo, part 3").

    python -m models.zoo3_measure [minilm_fp16] [efficientnet_lite0_qdq] [--out out/zoo3]

``models.zoo2_measure.measure`` with ``calibration(256)`` as the .npz: for each entry it writes
<out>/<name>/{model.onnx,calib.npz}, runs

    onnx-udc compress <out>/<name>/model.onnx -o <out>/<name>/default.onnx --calib <out>/<name>/calib.npz
    onnx-udc compress <out>/<name>/model.onnx -o <out>/<name>/step0.2.onnx --step-rel 0.2

and evaluates every file written with the entry's ``fidelity()`` on ``feeds()`` through
``onnx_udc.InferenceSession``. Token inputs (MiniLM's batches are each padded to their own
longest sentence) are padded with zeros to the longest calibration batch, attention mask 0
there, so that the batches stack on axis 0 (zoo2_measure.write_npz). Results:
<out>/<name>/result.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .zoo2_measure import ROOT, measure

ENTRIES = ("minilm_fp16", "efficientnet_lite0_qdq")
CALIB = 256


def main(argv: list[str]) -> None:
    out = ROOT / "out" / "zoo3"
    if "--out" in argv:
        i = argv.index("--out")
        out = Path(argv[i + 1]).resolve()
        argv = argv[:i] + argv[i + 2:]
    for name in argv or ENTRIES:
        print(f"== {name}", flush=True)
        measure(name, out, log=lambda s: print(s, flush=True), samples=CALIB)


if __name__ == "__main__":
    main(sys.argv[1:])
