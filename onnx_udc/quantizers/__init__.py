"""Registry of quantizers, keyed by FORMAT.md id and by name.

Adding a quantizer is one new module with a ``@register`` class plus its import below
(docs/design/extending.md lists every file of both languages).
"""

from __future__ import annotations

from .base import REGISTRY, Encoded, Quantizer, register

by_id = REGISTRY.by_id
by_name = REGISTRY.by_name
names = REGISTRY.names

from . import raw, scalar  # noqa: E402,F401,I001  (registration)
from . import a2, d4, e8  # noqa: E402,F401  (registration: dithered lattices)
from . import pq  # noqa: E402,F401  (registration)
from . import scalar_channel  # noqa: E402,F401  (registration)



def lattices() -> list[str]:
    """Names of the registered dithered lattice quantizers (tests and golden vectors iterate them)."""
    from .lattice import LatticeQuantizer

    return [n for n in names() if isinstance(by_name(n), LatticeQuantizer)]


def step_quantizers() -> list[str]:
    """Names of the registered quantizers with a step (rate allocation can choose among them)."""
    return [n for n in names() if by_name(n).has_step and not by_name(n).lossless]


__all__ = ["REGISTRY", "Encoded", "Quantizer", "register", "by_id", "by_name", "lattices", "names", "step_quantizers"]
