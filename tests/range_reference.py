"""An independent, slow pure-Python implementation of coder 2, range (FORMAT.md 5.2).

Written from FORMAT.md alone (no shared code with runtime/src/core/coders/range*): used
only by the tests, on small inputs, to cross-check the C++ encoder and decoder and the
spec itself. Integers only; a few thousand symbols per second.
"""

from __future__ import annotations

ONE = 1 << 16
P_MIN, P_MAX = 32, ONE - 32
COUNT_MAX = 255
TOP = 1 << 24
MAG_CTX = 7
MEAN_CLAMP = 1 << 20


class CorruptPayload(Exception):
    pass


class _Bin:
    __slots__ = ("p", "n")

    def __init__(self):
        self.p, self.n = ONE // 2, 0

    def update(self, bit: int) -> None:
        rate = ONE // (self.n + 2)
        p = self.p + (((ONE - self.p) * rate) >> 16) if bit else self.p - ((self.p * rate) >> 16)
        self.p = min(max(p, P_MIN), P_MAX)
        self.n = min(self.n + 1, COUNT_MAX)


class _Models:
    """One set of the adaptive models Z, G, C, M (section 5.2, "Models")."""

    def __init__(self):
        self.zero = [_Bin() for _ in range(MAG_CTX)]
        self.sign = [[_Bin() for _ in range(3)] for _ in range(32)]
        self.cls = [[_Bin() for _ in range(32)] for _ in range(MAG_CTX)]
        self.mant = [[_Bin() for _ in range(4)] for _ in range(32)]


class _State:
    """Models and context of one stream (section 5.2, "Models" and "Contexts"): one model set,
    or one per vector position (variant 2)."""

    def __init__(self, period: int, per_position: bool = False):
        self.sets = [_Models() for _ in range(period if per_position else 1)]
        self.mean = [0] * period
        self.period, self.pos, self.prev_sign = period, 0, 0

    def models(self) -> _Models:
        return self.sets[self.pos if len(self.sets) > 1 else 0]

    def ctx(self) -> int:
        return min((self.mean[self.pos] >> 4).bit_length(), MAG_CTX - 1)

    def push(self, mag: int, neg: int) -> None:
        a = self.mean[self.pos]
        self.mean[self.pos] = a - (a >> 2) + 4 * min(mag, MEAN_CLAMP)
        self.prev_sign = 0 if mag == 0 else 1 + neg
        self.pos = (self.pos + 1) % self.period


def _bins(symbol: int, state: _State, max_class: int):
    """The (model or None, bit) sequence of one symbol, updating the context afterwards."""
    mag, neg = (symbol >> 1) + (symbol & 1), symbol & 1
    ctx, m = state.ctx(), state.models()
    out = [(m.zero[ctx], int(mag == 0))]
    if mag:
        k = mag.bit_length() - 1
        out += [(m.cls[ctx][j], 1) for j in range(k)]
        if k < max_class:
            out.append((m.cls[ctx][k], 0))
        out.append((m.sign[k][state.prev_sign], neg))
        node = 1
        for depth, b in enumerate(range(k - 1, -1, -1)):
            bit = (mag >> b) & 1
            if depth < 2:
                out.append((m.mant[k][node], bit))
                node = 2 * node + bit
            else:
                out.append((None, bit))
    state.push(mag, neg if mag else 0)
    return out


def header(period: int, variant: int = 1) -> bytes:
    """The payload header for a context period: variant 1, one byte up to 255, else the
    extended header 0, variant, the period as a little-endian base-128 varint."""
    if period <= 255 and variant == 1:
        return bytes([period])
    out = bytearray([0, variant])
    while period >= 0x80:
        out.append(0x80 | (period & 0x7F))
        period >>= 7
    return bytes(out + bytes([period]))


def parse_header(payload: bytes) -> tuple[int, bool, int]:
    """payload -> (period, a model set per position, header length), or CorruptPayload."""
    if not payload:
        raise CorruptPayload("missing period byte")
    if payload[0]:
        return payload[0], False, 1
    if len(payload) < 2 or payload[1] not in (1, 2):
        raise CorruptPayload("missing or unknown extended variant")
    period, i = 0, 2
    while True:
        if i >= len(payload) or i == 5:
            raise CorruptPayload("truncated or too long period varint")
        byte = payload[i]
        period |= (byte & 0x7F) << (7 * (i - 2))
        if byte < 0x80:
            if byte == 0 and i > 2:
                raise CorruptPayload("empty last varint group")
            break
        i += 1
    if not 1 <= period <= (8 if payload[1] == 2 else 1 << 20):
        raise CorruptPayload(f"period {period} for variant {payload[1]}")
    return period, payload[1] == 2, i + 1


def encode(symbols, width: int, period: int = 1, check: bool = True, wide: bool = False, variant: int = 1) -> bytes:
    """symbols -> payload. check=False lets the tests write 2^(8*width), which no encoder may.
    wide=False clamps the period to 255 (the legacy header), True keeps it (up to 2^20).
    variant=2: a model set per vector position (period <= 8)."""
    period = max(1, min(int(period), (1 << 20) if wide or variant == 2 else 255))
    assert variant == 1 or period <= 8
    max_class = 8 * width - 1
    state = _State(period, variant == 2)
    out = bytearray()
    low, rng = 0, 0xFFFFFFFF

    def carry():
        i = len(out)
        while out[i - 1] == 0xFF:
            out[i - 1] = 0
            i -= 1
        out[i - 1] += 1

    for s in symbols:
        s = int(s)
        assert 0 <= s < (1 << (8 * width)) or (not check and s == 1 << (8 * width))
        for model, bit in _bins(s, state, max_class):
            p = model.p if model is not None else ONE // 2
            bound = (rng >> 16) * p
            if bit:
                rng = bound
            else:
                low += bound
                rng -= bound
                if low >= 1 << 32:
                    carry()
                    low -= 1 << 32
            if model is not None:
                model.update(bit)
            while rng < TOP:
                out.append(low >> 24)
                low = (low << 8) & 0xFFFFFFFF
                rng <<= 8
    if low:
        v = -(-low // TOP) * TOP
        if v >= 1 << 32:
            carry()
        else:
            out.append(v >> 24)
    while out and out[-1] == 0:
        out.pop()
    return header(period, variant) + bytes(out)


def decode(payload: bytes, numel: int, width: int) -> list[int]:
    """payload -> numel symbols, or CorruptPayload (the checks of section 5.2)."""
    payload = bytes(payload)
    period, per_position, start = parse_header(payload)
    stream = payload[start:]
    if numel == 0:
        if stream:
            raise CorruptPayload("stream bytes for 0 symbols")
        return []
    if stream and stream[-1] == 0:
        raise CorruptPayload("trailing zero byte")
    pos = 0

    def next_byte():
        nonlocal pos
        pos += 1
        return stream[pos - 1] if pos <= len(stream) else 0

    code = 0
    for _ in range(4):
        code = (code << 8) | next_byte()
    rng = 0xFFFFFFFF
    if code >= rng:
        raise CorruptPayload("stream starts outside the interval")

    def bit_with(p):
        nonlocal code, rng
        bound = (rng >> 16) * p
        if code < bound:
            rng, bit = bound, 1
        else:
            code, rng, bit = code - bound, rng - bound, 0
        while rng < TOP:
            rng <<= 8
            code = (code << 8) | next_byte()
        return bit

    def adaptive(model):
        bit = bit_with(model.p)
        model.update(bit)
        return bit

    state = _State(period, per_position)
    max_class = 8 * width - 1
    out = []
    for _ in range(numel):
        ctx, m = state.ctx(), state.models()
        if adaptive(m.zero[ctx]):
            state.push(0, 0)
            out.append(0)
            continue
        k = 0
        while k < max_class and adaptive(m.cls[ctx][k]):
            k += 1
        neg = adaptive(m.sign[k][state.prev_sign])
        mag, node = 1, 1
        for depth in range(k):
            if depth < 2:
                bit = adaptive(m.mant[k][node])
                node = 2 * node + bit
            else:
                bit = bit_with(ONE // 2)
            mag = 2 * mag + bit
        state.push(mag, neg)
        s = 2 * mag - neg
        if s >= 1 << (8 * width):
            raise CorruptPayload(f"symbol {s} does not fit {width} byte(s)")
        out.append(s)
    if len(stream) > pos - 3:
        raise CorruptPayload("bytes after the end of the stream")
    return out
