"""The encoder: per-tensor plans (config) and the encode stage (stage).

    CompressConfig.tensor_plan(candidate)        -> TensorPlan (quantizer, config, seed)
    make_plan -> quantize_plan -> [stages on Quantized] -> write   (each tensor coded once)
    compress_model(model, CompressConfig)        the fixed-settings pipeline
"""

from .config import EXACT, CompressConfig, TensorPlan
from .stage import (
    CompressReport,
    EncodedTensor,
    Plan,
    PlannedTensor,
    TensorReport,
    compress_model,
    encode_one,
    make_plan,
    pack_all,
    quantize_plan,
    write,
)

__all__ = [
    "EXACT", "CompressConfig", "CompressReport", "EncodedTensor", "Plan", "PlannedTensor", "TensorPlan", "TensorReport",
    "compress_model", "encode_one", "make_plan", "pack_all", "quantize_plan", "write",
]
