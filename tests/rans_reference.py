"""An independent, slow pure-Python decoder of coder 3 (FORMAT.md 5.3), written from the
text of that section alone, to check the C++ decoder (and through it the encoder)."""

from __future__ import annotations


class Corrupt(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(5):
        if pos >= len(buf):
            raise Corrupt("varint runs past the payload")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if i > 0 and b == 0:
                raise Corrupt("non-canonical varint")
            if value >= 1 << 32:
                raise Corrupt("varint too large")
            return value, pos
    raise Corrupt("varint longer than 5 bytes")


def decode(payload: bytes, numel: int, width: int) -> list[int]:
    p = bytes(payload)
    if len(p) < 5 or p[0] != 1:
        raise Corrupt("header")
    lanes, n, contexts, h = p[1], p[2], p[3], p[4]
    if not (1 <= lanes <= 32 and 8 <= n <= 15 and 1 <= contexts <= 16 and 1 <= h <= 8):
        raise Corrupt("parameters")
    m = 1 << n
    tok_max = 32 + 4 * (8 * width - 5)
    pos = 5
    tables = []  # per context: slot -> (token, freq, cum)
    for _ in range(contexts):
        count, pos = _varint(p, pos)
        if not 1 <= count <= tok_max:
            raise Corrupt("token count")
        slots, cum = [], 0
        for t in range(count):
            f, pos = _varint(p, pos)
            if cum + f > m:
                raise Corrupt("frequencies exceed M")
            slots += [(t, f, cum)] * f
            cum += f
        if cum != m:
            raise Corrupt("frequencies do not sum to M")
        tables.append(slots)
    e_len, pos = _varint(p, pos)
    if e_len > len(p) - pos:
        raise Corrupt("extra bits past the payload")
    extra = p[pos:pos + e_len]
    words = p[pos + e_len:]
    if len(words) < 4 * lanes or len(words) % 2:
        raise Corrupt("word stream")
    x = [int.from_bytes(words[4 * j:4 * j + 4], "little") for j in range(lanes)]
    if any(v < 1 << 16 for v in x):
        raise Corrupt("initial state")
    wpos = 4 * lanes
    a = [0] * lanes
    bit = 0
    seg = -(-numel // lanes) if numel else 0
    out = [0] * numel
    for r in range(seg):
        for j in range(lanes):
            i = j * seg + r
            if i >= numel or r >= seg:
                continue
            if i >= min((j + 1) * seg, numel):
                continue
            bl = (a[j] >> h).bit_length()
            c = min(max(bl - 3, 0), contexts - 1)
            slot = x[j] % m
            t, f, cum = tables[c][slot]
            x[j] = f * (x[j] >> n) + slot - cum
            if x[j] < 1 << 16:
                if wpos + 2 > len(words):
                    raise Corrupt("words end early")
                x[j] = (x[j] << 16) | int.from_bytes(words[wpos:wpos + 2], "little")
                wpos += 2
            if t < 32:
                s = t
            else:
                k, u = (t - 32) // 4 + 5, (t - 32) % 4
                e = 0
                for b in range(k - 2):
                    if bit >= 8 * len(extra):
                        raise Corrupt("extra bits end early")
                    e |= ((extra[bit // 8] >> (bit % 8)) & 1) << b
                    bit += 1
                s = (1 << k) + u * (1 << (k - 2)) + e
            out[i] = s
            a[j] = a[j] - (a[j] >> h) + 16 * min((s >> 1) + (s & 1), 1 << 16)
    if any(v != 1 << 16 for v in x) or wpos != len(words):
        raise Corrupt("stream does not end canonically")
    if len(extra) != -(-bit // 8) or (bit % 8 and extra[-1] >> (bit % 8)):
        raise Corrupt("extra bits do not end canonically")
    return out
