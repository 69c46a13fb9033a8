"""What an initializer is to the node that reads it: a weight, an integer weight, or other.

A registry from (domain, op type) to a small handler that names the role of each input
slot; ops that are not registered fall back to OTHER, so an unknown op's inputs are
never touched. Shape-like inputs (Reshape's shape, Slice's starts, Resize's scales ...)
are OTHER by construction.
"""

from __future__ import annotations

import enum
from collections.abc import Callable


class Role(enum.Enum):
    WEIGHT = "weight"  # float weight: may be quantized
    INT_WEIGHT = "int_weight"  # already-quantized integer weight: coded losslessly
    OTHER = "other"  # never touched
    THROUGH = "through"  # layout op (Transpose, Reshape, Slice ...): the role is that of its outputs' uses


Handler = Callable[[int], Role]
_ROLES: dict[tuple[str, str], Handler] = {}


def register(*op_types: str, domain: str = "") -> Callable[[Handler], Handler]:
    def wrap(handler: Handler) -> Handler:
        for op_type in op_types:
            _ROLES[(domain, op_type)] = handler
        return handler

    return wrap


def role_of(domain: str, op_type: str, input_index: int) -> Role:
    handler = _ROLES.get((domain or "", op_type))
    return handler(input_index) if handler else Role.OTHER


def _slots(role: Role, *indices: int) -> Handler:
    chosen = frozenset(indices)
    return lambda i: role if i in chosen else Role.OTHER


register("Conv", "ConvTranspose")(_slots(Role.WEIGHT, 1, 2))
register("Gemm")(_slots(Role.WEIGHT, 0, 1, 2))
register("MatMul", "Einsum", "Add", "Sub", "Mul")(lambda i: Role.WEIGHT)
register("Gather", "GatherElements", "GatherND")(_slots(Role.WEIGHT, 0))
register("LSTM", "GRU", "RNN")(_slots(Role.WEIGHT, 1, 2, 3))
register("LayerNormalization", "InstanceNormalization", "GroupNormalization")(_slots(Role.WEIGHT, 1, 2))
# BatchNormalization's variance (4) must stay positive: never perturb it.
register("BatchNormalization")(_slots(Role.WEIGHT, 1, 2, 3))
register("PRelu")(_slots(Role.WEIGHT, 1))
# Layout ops pass a weight on unchanged in value: look at what reads their output.
register("Transpose", "Reshape", "Slice", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Split", "Expand",
         "Tile", "Cast")(_slots(Role.THROUGH, 0))
register("Concat")(lambda i: Role.THROUGH)
register("DequantizeLinear")(_slots(Role.INT_WEIGHT, 0))
register("MatMulInteger", "ConvInteger")(_slots(Role.INT_WEIGHT, 0, 1))
register("QLinearMatMul")(_slots(Role.INT_WEIGHT, 0, 3))
register("QLinearConv")(_slots(Role.INT_WEIGHT, 3, 8))
register("MatMulNBits", domain="com.microsoft")(_slots(Role.INT_WEIGHT, 1))
register("EmbedLayerNormalization", domain="com.microsoft")(_slots(Role.WEIGHT, 2, 3, 4, 5, 6))
