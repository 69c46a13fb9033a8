"""End-to-end distillation of the shared codewords (optional extra: pip install 'onnx-udc[finetune]').

    bridge   the ONNX graph run with torch ops (Bridge; UnsupportedOpError for what it lacks)
    params   what the decoder reads as trainable tensors (pq centroids, codeword tables,
             steps, channel steps), the decoded weight as a differentiable function of
             them, and the way back to codec.Quantized (bit-exact with every decoder)
    distill  the loop: teacher = the original model, student = the compressed one, indices
             frozen; kept only when the held-out loss improves

Nothing here imports torch at module level: ``import onnx_udc.finetune`` works without it,
and ``distill`` then raises MissingTorchError with the pip hint.
"""

from __future__ import annotations

from .distill import DistillReport, DistillResult, distill, distill_encoded, quantized_from_model, replace_blobs
from .errors import PIP_HINT, DistillError, MissingTorchError, UnsupportedOpError

__all__ = ["DistillError", "DistillReport", "DistillResult", "MissingTorchError", "PIP_HINT", "UnsupportedOpError",
           "distill", "distill_encoded", "quantized_from_model", "replace_blobs"]
