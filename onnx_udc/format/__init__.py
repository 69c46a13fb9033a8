"""The blob format of FORMAT.md: header and layout (blob), symbol bytes (symbols), the
shared pseudo-random dither (dither). Pure functions; no ONNX, no native code."""

from .blob import *  # noqa: F401,F403
from .blob import __all__ as _blob_all

__all__ = list(_blob_all)
