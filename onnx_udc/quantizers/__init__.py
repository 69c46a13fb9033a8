"""Registry of quantizers, keyed by FORMAT.md id and by name.

Adding a quantizer is one new module with a ``@register`` class plus its import below.
"""

from __future__ import annotations

from ..registry import Registry
from .base import Encoded, Quantizer

REGISTRY: Registry[Quantizer] = Registry("quantizer", "UNKNOWN_QUANTIZER")
register = REGISTRY.register
by_id = REGISTRY.by_id
by_name = REGISTRY.by_name
names = REGISTRY.names

from . import raw, scalar  # noqa: E402,F401  (registration)
from . import a2, d4, e8  # noqa: E402,F401  (registration: dithered lattices)
from . import pq  # noqa: E402,F401  (registration)

__all__ = ["Encoded", "Quantizer", "register", "by_id", "by_name", "names"]
