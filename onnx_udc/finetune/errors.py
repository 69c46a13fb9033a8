"""Typed errors of the distillation stage (all ``UdcError``: the CLI's exit-code mapping applies).

    MissingTorchError   torch is not installed: the message carries the pip hint
    UnsupportedOpError  the ONNX-to-torch bridge cannot run an op of the model; the caller
                        reports "distillation skipped: op X not supported" and keeps its blobs
"""

from __future__ import annotations

from ..errors import ConfigError, UdcError

PIP_HINT = "pip install 'onnx-udc[finetune]'"


class DistillError(UdcError):
    """Distillation cannot run on this model or with these inputs."""

    exit_code = 2

    @property
    def skipped(self) -> str:
        """The line a caller prints when it goes on without distillation."""
        return f"distillation skipped: {self}"


class MissingTorchError(DistillError, ImportError):
    """The optional dependency torch is missing."""

    def __init__(self, message: str | None = None):
        super().__init__(message or f"distillation needs torch: {PIP_HINT}")


class UnsupportedOpError(DistillError):
    """The bridge has no torch implementation for an op (or an attribute value) of the model."""

    def __init__(self, op_type: str, detail: str = ""):
        self.op_type = op_type
        super().__init__(f"op {op_type} not supported" + (f" ({detail})" if detail else ""))


def require_torch():
    """The torch module, or MissingTorchError with the pip hint."""
    try:
        import torch
    except ImportError:
        raise MissingTorchError() from None
    return torch


__all__ = ["ConfigError", "DistillError", "MissingTorchError", "PIP_HINT", "UnsupportedOpError", "require_torch"]
