"""Registry of lossless coders, keyed by FORMAT.md id and by name.

A coder turns the unsigned symbols of one tensor into a payload and back. Adding a coder
is one new module with a ``@register`` class plus its import below.
"""

from __future__ import annotations

from .base import REGISTRY, ByteCoder, Coder, by_id, by_name, names, register

from . import brotli_coder, range_coder, rans_coder, store  # noqa: E402,F401,I001  (registration)

__all__ = ["REGISTRY", "ByteCoder", "Coder", "by_id", "by_name", "names", "register"]
