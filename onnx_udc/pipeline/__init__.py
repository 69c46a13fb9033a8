"""One pipeline: plan, then encode each tensor once.

    spec (CLI options or API) --plan--> per-tensor TensorPlan (fixed settings, a rate
        allocation, product-quantization fits) --quantize--> Quantized --[codeword tables]-->
        --pack (coder, once)--> blobs --graph rewrite--> compressed model + report
"""

from .compress import CompressResult, CompressSpec, PQSpec, TablesSpec, compress

__all__ = ["CompressResult", "CompressSpec", "PQSpec", "TablesSpec", "compress"]
