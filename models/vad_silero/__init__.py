"""Silero VAD v6 (recurrent voice activity detector) as shipped in silero-vad 6.2.3.

    vad_silero   silero_vad/data/silero_vad.onnx   (the 8 kHz / 16 kHz model)

Inputs: ``input`` float32 [B, 64 + 512] (the previous chunk's last 64 samples, then a
32 ms chunk at 16 kHz, as silero_vad's OnnxWrapper feeds it), ``state`` float32
[2, B, 128] (the LSTM state, carried from the previous chunk's ``stateN``), ``sr`` int64
scalar 16000. Output ``output`` [B, 1]: speech probability per chunk. The graph has no
initializers: all 0.31 M weights are Constant nodes inside the If branches that pick
the 8 kHz or 16 kHz network from ``sr``.

A stateful model: ``feeds()`` are the chunks of ``STREAMS`` clips in step (one feed per
32 ms, batch = the clips), each with a zero ``state``; ``run()`` replaces it by the
``stateN`` the same session returned for the previous chunk, so a compressed model
carries its own state through each 8 s clip. The benchmark calls ``run()``.

Audio: no recorded speech ships in any package at hand, so the clips are synthesized
by ``audio.py`` (source-filter vowels, syllables, fricatives, pauses, noise, hum and
tone distractors); the original model marks 93-98 % of the chunks the way the synthesis
placed speech. Evaluation clips use seeds 0-7, calibration clips seeds 1000-1007.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..shipped import cached_copy
from ..zoo import FidelityTarget, Outputs, ZooModel, ZooUnavailable, register

SILERO = ("silero_vad", "silero-vad==6.2.3")
SR = 16000
CHUNK, CONTEXT = 512, 64
STREAMS = 8
SECONDS = 8.0
THRESHOLD = 0.5  # silero_vad's get_speech_timestamps default


def model_file() -> Path:
    # find_spec locates the package without importing it (silero_vad's __init__ imports torch)
    spec = importlib.util.find_spec(SILERO[0])
    if spec is None or not spec.submodule_search_locations:
        raise ZooUnavailable(f"silero_vad is not installed: pip install -e '.[zoo]' (or pip install {SILERO[1]})")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise ZooUnavailable(f"silero_vad has no data/silero_vad.onnx: pip install {SILERO[1]}")
    return path


def chunks(seeds: range) -> np.ndarray:
    """[T, len(seeds), CONTEXT + CHUNK] float32: each clip's chunks with the 64-sample context."""
    from .audio import clip

    audio = np.stack([clip(s, SECONDS)[0] for s in seeds])
    t = audio.shape[1] // CHUNK
    x = audio[:, : t * CHUNK].reshape(len(seeds), t, CHUNK)
    ctx = np.concatenate([np.zeros((len(seeds), 1, CONTEXT), np.float32), x[:, :-1, -CONTEXT:]], axis=1)
    return np.ascontiguousarray(np.concatenate([ctx, x], axis=2).transpose(1, 0, 2))


def zero_state(batch: int) -> np.ndarray:
    return np.zeros((2, batch, 128), np.float32)


@register("vad_silero")
class VadSilero(ZooModel):
    name = "vad_silero"
    title = "Silero VAD v6 (stateful LSTM, If branches)"
    primary = "decision_agreement"
    target = FidelityTarget("decision_agreement", 0.98, (("agreement", 0.99), ("sqnr", 25.0)))

    def onnx_path(self) -> Path:
        return cached_copy(model_file(), self.cache_dir() / "model.onnx")

    def _chunks(self, part: str) -> np.ndarray:
        from ..shipped.data import cached

        seeds = range(0, STREAMS) if part == "eval" else range(1000, 1000 + STREAMS)
        scipy_ok = importlib.util.find_spec("scipy") is not None
        if not scipy_ok and not (self.cache_dir() / f"{part}.npz").exists():
            raise ZooUnavailable("scipy is not installed: pip install -e '.[zoo]' (or pip install scipy)")
        return cached(self.cache_dir() / f"{part}.npz", lambda: {"x": chunks(seeds)})["x"]

    def feeds(self, limit: int | None = None) -> list[dict[str, np.ndarray]]:
        """One feed per chunk time step (batch = the clips); ``limit`` caps the time steps."""
        x = self._chunks("eval")[:limit]
        sr = np.array(SR, np.int64)
        return [{"input": c, "state": zero_state(len(c)), "sr": sr} for c in x]

    def run(self, session, feeds: list[dict[str, np.ndarray]]) -> Outputs:
        """The clips chunk by chunk, each chunk's state the previous chunk's stateN."""
        outputs, state = [], None
        for feed in feeds:
            out = session.run(None, {**feed, "state": feed["state"] if state is None else state})
            state = out[1]
            outputs.append(out)
        return outputs

    def calibration(self, samples: int) -> list[dict[str, np.ndarray]]:
        """Chunks of the calibration clips with the state the original model carries into each
        (teacher-forced: the chunks become independent feeds), evenly spread over the clips.

        Each feed holds all STREAMS clips at one time step, so ``samples`` is rounded to
        whole time steps (of STREAMS samples)."""
        import onnxruntime as ort

        x = self._chunks("calib")
        session = ort.InferenceSession(str(self.onnx_path()), providers=["CPUExecutionProvider"])
        sr = np.array(SR, np.int64)
        states, state = [], zero_state(x.shape[1])
        for c in x:
            states.append(state)
            state = session.run(None, {"input": c, "state": state, "sr": sr})[1]
        steps = max(1, min(len(x), round(samples / x.shape[1])))
        picks = np.unique(np.linspace(0, len(x) - 1, steps).round().astype(int))
        return [{"input": x[t], "state": states[t], "sr": sr} for t in picks]

    def fidelity(self, reference: Outputs, outputs: Outputs) -> dict[str, float]:
        return vad_metrics(reference, outputs)


def vad_metrics(reference: Outputs, outputs: Outputs, threshold: float = THRESHOLD) -> dict[str, float]:
    """Speech probabilities [T, B] of every chunk: decision agreement at ``threshold``,
    largest and mean absolute probability error, and agreement of speech onsets/offsets
    (a chunk where the decision changes) within one chunk."""
    ref = np.stack([b[0][:, 0] for b in reference]).astype(np.float64)
    out = np.stack([b[0][:, 0] for b in outputs]).astype(np.float64)
    a, b = ref > threshold, out > threshold
    ea = np.diff(a.astype(int), axis=0) != 0
    eb = np.diff(b.astype(int), axis=0) != 0
    near = lambda e: e | np.roll(e, 1, 0) | np.roll(e, -1, 0)  # noqa: E731
    edges = int(ea.sum())
    return {
        "decision_agreement": float(np.mean(a == b)),
        "max_abs_error": float(np.max(np.abs(ref - out))),
        "mean_abs_error": float(np.mean(np.abs(ref - out))),
        "edge_recall": float(np.sum(ea & near(eb)) / edges) if edges else 1.0,
        "speech_fraction": float(np.mean(a)),
    }
