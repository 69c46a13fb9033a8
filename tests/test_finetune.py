"""onnx_udc.finetune: the ONNX-to-torch bridge against onnxruntime, distillation lowering the
held-out loss, and every written blob decoding (Python and C++ decoders) to exactly the
trained values. The torch tests skip without torch (CI); the import-hygiene tests do not."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import modelzoo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(ROOT),
                          timeout=120)


# ---- without torch ------------------------------------------------------------------------
def test_the_core_and_the_cli_never_import_torch(tmp_path):
    model = tmp_path / "m.onnx"
    onnx.save(modelzoo.mlp(), model)
    done = _run(
        "import sys\n"
        "import onnx_udc, onnx_udc.finetune, onnx_udc.pipeline, onnx_udc.fit.pq_model, onnx_udc.fit.tables\n"
        "from onnx_udc.cli import main\n"
        f"code = main(['compress', {str(model)!r}, '-o', {str(tmp_path / 'c.onnx')!r}, '--step-rel', '0.3', '-q'])\n"
        "assert code == 0, code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n")
    assert done.returncode == 0, done.stderr


def test_distill_without_torch_raises_the_typed_error_with_the_pip_hint():
    done = _run(
        "import sys\n"
        "sys.modules['torch'] = None  # import torch -> ImportError\n"
        "import onnx_udc\n"
        "from onnx_udc.finetune import MissingTorchError, PIP_HINT, distill\n"
        "try:\n"
        "    distill(None, {}, [])\n"
        "except MissingTorchError as exc:\n"
        "    assert isinstance(exc, onnx_udc.UdcError) and PIP_HINT in str(exc), str(exc)\n"
        "    assert exc.skipped.startswith('distillation skipped: distillation needs torch')\n"
        "    print('typed:', exc)\n"
        "else:\n"
        "    raise SystemExit('no error')\n")
    assert done.returncode == 0, done.stderr
    assert "pip install 'onnx-udc[finetune]'" in done.stdout


# ---- the bridge ---------------------------------------------------------------------------
def _feeds(model: onnx.ModelProto, rng, batch: int = 3) -> dict[str, np.ndarray]:
    inits = {i.name for i in model.graph.initializer}
    out = {}
    for v in model.graph.input:
        if v.name not in inits:
            dims = [d.dim_value or batch for d in v.type.tensor_type.shape.dim]
            out[v.name] = rng.standard_normal(dims).astype(np.float32)
    return out


def _models():
    from models import synthetic

    rng = np.random.default_rng(0)
    yield "cnn", modelzoo.cnn(), _feeds(modelzoo.cnn(), rng)
    yield "mlp", modelzoo.mlp(), _feeds(modelzoo.mlp(), rng)
    yield "two_branch", modelzoo.two_branch(), _feeds(modelzoo.two_branch(), rng)
    yield "tiny_bert", synthetic.tiny_bert(), synthetic.tiny_bert_inputs(rng)
    yield "stateful_rnn", synthetic.stateful_rnn(), synthetic.stateful_rnn_inputs(rng, batch=2)
    fmnist = ROOT / "models" / "fashion_mnist" / "resnet20_fmnist.onnx"
    if fmnist.exists():
        yield "resnet20", onnx.load(fmnist), {"input": rng.random((4, 1, 28, 28), dtype=np.float32)}


def test_the_bridge_matches_onnxruntime(torch):
    from onnx_udc.finetune.bridge import Bridge

    for name, model, feeds in _models():
        want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
        with torch.no_grad():
            got = Bridge(model).run(feeds)
        for w, g in zip(want, got):
            assert g.shape == w.shape, name
            np.testing.assert_allclose(g.numpy(), w, atol=1e-4, rtol=0, err_msg=name)


def test_an_unsupported_op_is_a_typed_error(torch):
    from onnx_udc.errors import UdcError
    from onnx_udc.finetune import UnsupportedOpError
    from onnx_udc.finetune.bridge import Bridge

    with pytest.raises(UnsupportedOpError) as info:
        Bridge(modelzoo.with_if())
    assert isinstance(info.value, UdcError) and info.value.op_type == "If"
    assert info.value.skipped.startswith("distillation skipped: op If not supported")


# ---- exactness of what is written -----------------------------------------------------------
def _quantized_cases(rng):
    from onnx_udc import codec
    from onnx_udc.quantizers.lattice import LatticeConfig
    from onnx_udc.quantizers.pq import PQConfig, PQFit
    from onnx_udc.quantizers.scalar_channel import ChannelConfig
    from onnx_udc.quantizers.base import StepConfig

    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)  # a conv kernel
    yield "scalar", codec.quantize(w, "scalar", StepConfig(step_rel=0.4), seed=3)
    yield "scalar+table", codec.quantize(w, "scalar", StepConfig(step_rel=0.4, refine=True), seed=4)
    yield "scalar f16", codec.quantize(w.astype(np.float16), "scalar", StepConfig(step_rel=0.4), seed=5)
    yield "scalar_channel", codec.quantize(w, "scalar_channel", ChannelConfig(step_rel=0.4, axis=0), seed=6)
    for lat in ("a2", "d4", "e8"):
        m = rng.standard_normal((13, 7)).astype(np.float32)  # a tail for every lattice
        yield lat, codec.quantize(m, lat, LatticeConfig(step_rel=0.5, axis_order=(1, 0)), seed=7)
    fit = PQFit(order=(1, 0), d=4, centroids=rng.standard_normal((16, 4)).astype(np.float16),
                indices=rng.integers(0, 16, 7))  # 26 weights in blocks of 4: a padded tail block
    m = rng.standard_normal((2, 13)).astype(np.float32)
    yield "pq", codec.quantize(m, "pq", PQConfig(fit=fit))
    yield "pq f16", codec.quantize(m.astype(np.float16), "pq", PQConfig(fit=fit))


def test_written_blobs_decode_to_exactly_the_trained_values(torch):
    from onnx_udc import codec
    from onnx_udc.finetune import params

    try:
        from onnx_udc.native import native_decoder

        native = native_decoder()
    except Exception:  # the C++ library is optional here
        native = None
    rng = np.random.default_rng(0)
    for name, q in _quantized_cases(rng):
        tr = params.trainable(name, q, table_budget=1.0)
        assert tr is not None and tr.parameters(), name
        with torch.no_grad():  # a "trained" state: every leaf moved off its start
            for p, scale in tr.parameters():
                p.add_(torch.randn(p.shape) * 0.05 * (scale if p.dim() else 1.0))
            trained = tr.weight().numpy()
        new = tr.to_quantized()
        assert np.array_equal(new.symbols, q.symbols), name  # indices frozen
        blob = codec.pack(new).blob
        for decoder in [codec.decode_blob] + ([native.decode] if native is not None else []):
            got = decoder(blob)
            assert got.dtype == trained.dtype and got.shape == trained.shape, name
            assert got.tobytes() == trained.tobytes(), f"{name}: {decoder}"
        if "f16" not in name and name != "pq":  # something really changed
            assert codec.dequantize(q).tobytes() != trained.tobytes(), name


def test_an_untrained_tensor_writes_the_same_decode(torch):
    from onnx_udc import codec
    from onnx_udc.finetune import params

    for name, q in _quantized_cases(np.random.default_rng(1)):
        tr = params.trainable(name, q)
        assert codec.dequantize(tr.to_quantized()).tobytes() == codec.dequantize(q).tobytes(), name
        with torch.no_grad():
            assert tr.weight().numpy().tobytes() == codec.dequantize(q).tobytes(), name


# ---- distillation -------------------------------------------------------------------------------
def _calib(model, n: int, seed: int):
    rng = np.random.default_rng(seed)
    return [_feeds(model, rng, batch=32) for _ in range(n // 32)]


def test_distillation_lowers_the_held_out_loss_and_writes_a_model(torch):
    from onnx_udc import codec, compress_model
    from onnx_udc.encoder import CompressConfig
    from onnx_udc.finetune import distill
    from onnx_udc.graph.rewrite import blob_bytes, decode_nodes
    from onnx_udc.quantizers.base import StepConfig

    model = modelzoo.cnn(channels=8)
    compressed, _ = compress_model(model, CompressConfig(scalar=StepConfig(step_rel=0.6), min_elements=256))
    calib, held = _calib(model, 128, 0), _calib(model, 64, 1)
    result = distill(model, compressed, calib, held, steps=25, lr=3e-3, batch=32)
    report = result.report
    assert report.loss == "kl" and report.kept, report.describe()
    assert report.holdout_after < report.holdout_before
    assert result.quantized and set(result.quantized) <= {n.output[0] for n, _ in decode_nodes(compressed)}
    blobs = {n.output[0]: blob_bytes(b) for n, b in decode_nodes(result.model)}
    for name, q in result.quantized.items():
        assert codec.decode_blob(blobs[name]).tobytes() == codec.dequantize(q).tobytes()
    # the held-out loss the report gives is the one of the written model, run by onnxruntime
    sess = ort.InferenceSession(onnx.load_from_string(_plain(result.model)).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    teacher = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    kl = []
    for feeds in held:
        s, r = sess.run(None, feeds)[0], teacher.run(None, feeds)[0]
        ls = s - s.max(1, keepdims=True)
        ls = ls - np.log(np.exp(ls).sum(1, keepdims=True))
        lr_ = r - r.max(1, keepdims=True)
        lr_ = lr_ - np.log(np.exp(lr_).sum(1, keepdims=True))
        kl.append((np.exp(lr_) * (lr_ - ls)).sum(1).mean())
    assert abs(float(np.mean(kl)) - report.holdout_after) < 1e-4 * max(1.0, report.holdout_after)


def _plain(model: onnx.ModelProto) -> bytes:
    from onnx_udc import decompress_model

    return decompress_model(model).SerializeToString()


def test_distill_encoded_replaces_the_encode_stage_tensors(torch):
    from onnx_udc.encoder import CompressConfig, make_plan, quantize_plan, write
    from onnx_udc.finetune import distill_encoded
    from onnx_udc.quantizers.base import StepConfig

    model = modelzoo.mlp()
    plan = make_plan(model, CompressConfig(scalar=StepConfig(step_rel=0.8)))
    encoded = quantize_plan(plan)
    calib, held = _calib(model, 128, 2), _calib(model, 64, 3)
    out, report = distill_encoded(model, encoded, calib, held, steps=30, lr=3e-3, batch=32, loss="mse")
    assert report.loss == "mse" and report.kept and report.holdout_after < report.holdout_before
    assert [e.name for e in out] == [e.name for e in encoded]
    assert any(a.quantized is not b.quantized for a, b in zip(out, encoded))
    assert all(np.array_equal(a.quantized.symbols, b.quantized.symbols) for a, b in zip(out, encoded))
    compressed, _ = write(plan, out)  # the encoder's own writer takes them as they are
    assert compressed.graph.node


def test_no_gain_keeps_the_blobs(torch):
    from onnx_udc import compress_model
    from onnx_udc.encoder import CompressConfig
    from onnx_udc.finetune import distill
    from onnx_udc.quantizers.base import StepConfig

    model = modelzoo.mlp()
    compressed, _ = compress_model(model, CompressConfig(scalar=StepConfig(step_rel=0.3)))
    result = distill(model, compressed, _calib(model, 64, 4), _calib(model, 32, 5), steps=0)
    assert not result.report.kept and result.quantized == {}
    assert result.model.SerializeToString() == compressed.SerializeToString()


def test_a_loss_the_trained_values_do_not_reach_is_a_distill_error(torch, monkeypatch):
    """Weights the bridge reads elsewhere (PP-OCR rec's Constant nodes): the loss has no
    gradient, which is a DistillError the pipeline skips, not torch's RuntimeError."""
    from onnx_udc import compress_model
    from onnx_udc.encoder import CompressConfig
    from onnx_udc.finetune import DistillError, distill
    from onnx_udc.quantizers.base import StepConfig

    import importlib

    bridge = importlib.import_module("onnx_udc.finetune.bridge")

    model = modelzoo.cnn(channels=8)
    compressed, _ = compress_model(model, CompressConfig(scalar=StepConfig(step_rel=0.6), min_elements=256))
    real = bridge.Bridge.run
    monkeypatch.setattr(bridge.Bridge, "run", lambda self, feeds, w: [o.detach() for o in real(self, feeds, w)])
    with pytest.raises(DistillError, match="do not reach the outputs"):
        distill(model, compressed, _calib(model, 128, 0), _calib(model, 64, 1), steps=3, batch=32)
