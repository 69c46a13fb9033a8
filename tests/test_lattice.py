"""Lattice quantizers A2, D4, E8 (FORMAT.md 4.2-4.5): nearest points, dither, error law,
both decoders bit for bit, codeword tables, hostile params."""

import dataclasses
import itertools
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onnx_udc import FormatError, decode_blob, encode_tensor, inspect_blob
from onnx_udc.format import pack_blob, parse_blob
from onnx_udc.quantizers import by_name, codewords, lattices
from onnx_udc.graph.layers import axis_order as vector_axis_order
from onnx_udc.quantizers.lattice import LatticeConfig, vector_dither

LATTICES = lattices()  # every registered lattice
STEP_QUANTIZERS = ["scalar", *LATTICES]


def lat(name):
    return by_name(name).lattice


def metric(name):
    """Squared-distance weights per integer coordinate (A2's rational Gram metric)."""
    return np.array([1.0, 3.0]) if name == "a2" else np.ones(lat(name).n)


def brute_lattice_points(name, y):
    """Lattice points near y, a superset of where the nearest one can be: [M, n]."""
    n = lat(name).n
    if name == "e8":  # per coset (2 D8, 2 D8 + 1): within one standard unit of the rounded point
        offsets = 2 * np.array(list(itertools.product(range(-1, 2), repeat=n)))
        even = 2 * np.rint(y / 2).astype(np.int64) + offsets
        odd = 2 * np.rint((y - 1) / 2).astype(np.int64) + 1 + offsets
        cand = np.concatenate([even, odd])
    else:
        cand = np.rint(y).astype(np.int64) + np.array(list(itertools.product(range(-2, 3), repeat=n)))
    if name == "a2":
        keep = (cand[:, 0] - cand[:, 1]) % 2 == 0
    elif name == "d4":
        keep = cand.sum(axis=1) % 2 == 0
    else:  # doubled E8: one parity, sum = 0 mod 4
        keep = np.all(cand % 2 == cand[:, :1] % 2, axis=1) & (cand.sum(axis=1) % 4 == 0)
    return cand[keep]


@pytest.mark.parametrize("name", LATTICES)
def test_nearest_point_matches_brute_force(name):
    rng = np.random.default_rng(1)
    g, m = lat(name), metric(name)
    y = rng.uniform(-6, 6, (40, g.n))
    y[:10] = np.round(y[:10] * 2) / 2  # half-integers: ties everywhere
    p = g.nearest(y, 1.0)
    assert np.array_equal(g.nearest(y * 1024, 1024.0), p)
    for yi, pi in zip(y, p):
        cand = brute_lattice_points(name, yi)
        assert any(np.array_equal(pi, c) for c in cand), "not a lattice point"
        best = (((cand - yi) ** 2) * m).sum(axis=1).min()
        assert (((pi - yi) ** 2) * m).sum() <= best + 1e-9


@pytest.mark.parametrize("name", LATTICES)
def test_integer_nearest_point_equals_float_one(name):
    rng = np.random.default_rng(2)
    g = lat(name)
    unit = (1 << 24) // g.box
    k = rng.integers(0, 1 << 24, (5000, g.n))
    k[:100] = (k[:100] // (unit // 2)) * (unit // 2)  # ties on purpose
    pi = g.nearest(k, unit)
    pf = g.nearest(k / unit, 1.0)
    dist = lambda p: (((k / unit - p) ** 2) * metric(name)).sum(axis=1)  # noqa: E731
    assert np.allclose(dist(pi), dist(pf))  # equal distances (ties may pick either)
    assert np.array_equal(pi[100:], pf[100:])


@pytest.mark.parametrize("name", LATTICES)
def test_symbol_map_round_trips(name):
    g = lat(name)
    y = np.random.default_rng(3).uniform(-1e5, 1e5, (2000, g.n))
    p = g.nearest(y, 1.0)
    assert np.array_equal(g.from_signed(g.to_signed(p)), p)


@pytest.mark.parametrize("name", LATTICES)
def test_dither_is_uniform_over_the_voronoi_cell(name):
    q = by_name(name)
    g = q.lattice
    u = vector_dither(g, 11, np.arange(100_000)).astype(np.float64)  # [V, n]
    assert np.mean(np.any(g.nearest(u, 1.0) != 0, axis=1)) < 1e-3  # inside the cell (boundary ties aside)
    err = u * g.scales(1.0).astype(np.float64)  # real units at step 1
    assert np.abs(err.mean(axis=0)).max() < 0.01
    assert (err**2).mean() == pytest.approx(q.noise_power(1.0), rel=0.01)
    # vector v's dither is computable alone
    alone = vector_dither(g, 11, np.array([77_777]))
    assert np.array_equal(alone, vector_dither(g, 11, np.arange(100_000))[77_777:77_778])


@pytest.mark.parametrize("name", STEP_QUANTIZERS)
@pytest.mark.parametrize("source", ["laplace", "constant"])
def test_error_power_is_noise_power_and_independent_of_weights(name, source):
    rng = np.random.default_rng(4)
    w = rng.laplace(size=(400, 500)) if source == "laplace" else np.full((400, 500), 0.3141)
    w = w.astype(np.float32)
    q = by_name(name)
    blob = encode_tensor(w, quantizer=name, config=LatticeConfig(step=0.5), seed=9).blob
    err = decode_blob(blob).astype(np.float64) - w
    assert (err**2).mean() == pytest.approx(q.noise_power(inspect_blob(blob).step), rel=0.02)
    assert abs(err.mean()) < 0.005
    if source == "laplace":
        assert abs(np.corrcoef(err.ravel(), w.ravel())[0, 1]) < 0.01


def with_params(blob: bytes, params: bytes) -> bytes:
    header, payload = parse_blob(blob)
    return pack_blob(dataclasses.replace(header, params=params), bytes(payload))


def random_table(rng, symbols, n, size):
    """A table whose keys are partly taken from the blob's vectors, values arbitrary."""
    vec = symbols[: symbols.size // n * n].reshape(-1, n).astype(np.uint32)
    keys = rng.integers(0, 9, (size, n))
    if len(vec):
        keys = np.concatenate([vec[rng.integers(0, len(vec), size)], keys])
    keys = keys.astype(np.uint32)
    keys = np.unique(keys, axis=0)
    values = rng.uniform(-50, 50, keys.shape).astype(np.float32)
    return codewords.CodewordTable(keys, values)


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(STEP_QUANTIZERS),
    shape=st.lists(st.integers(1, 9), min_size=0, max_size=4),
    half=st.booleans(),
    log_step=st.floats(-12, 2),
    seed=st.integers(0, 2**64 - 1),
    order_seed=st.integers(0, 1000),
    table=st.booleans(),
)
def test_python_and_native_decoders_agree(library, name, shape, half, log_step, seed, order_seed, table):
    from onnx_udc.native import NativeDecoder

    rng = np.random.default_rng(order_seed)
    w = (rng.standard_normal(shape) * 2).astype(np.float16 if half else np.float32)
    if not np.any(w):
        return
    order = tuple(rng.permutation(len(shape))) if name != "scalar" else None
    cfg = LatticeConfig(step_rel=2.0**log_step, axis_order=order)
    result = encode_tensor(w, quantizer=name, config=cfg, seed=seed)
    blob = result.blob
    if table:
        n = 1 if name == "scalar" else lat(name).n
        header, payload = parse_blob(blob)
        from onnx_udc.coders import by_id

        symbols = by_id(header.coder).decode(payload, header.numel, header.symbol_width)  # uint [numel]
        prefix = header.params[: len(shape)] if name != "scalar" else b""
        blob = with_params(blob, prefix + codewords.pack(random_table(rng, symbols, n, 5)))
    ref = decode_blob(blob)
    out = NativeDecoder(library).decode(blob)
    assert ref.dtype == out.dtype and ref.shape == out.shape == w.shape
    assert ref.tobytes() == out.tobytes()


def test_codeword_table_values_replace_the_point():
    rng = np.random.default_rng(6)
    w = rng.standard_normal(4000).astype(np.float32)
    blob = encode_tensor(w, quantizer="d4", config=LatticeConfig(step_rel=1.0), seed=2).blob
    header, payload = parse_blob(blob)
    plain = decode_blob(blob)
    from onnx_udc.coders import by_id

    symbols = by_id(header.coder).decode(payload, header.numel, header.symbol_width).reshape(-1, 4)
    key = symbols[17].astype(np.uint32)
    g = lat("d4")
    point = g.from_signed(np.array([[(int(s) >> 1) ^ -(int(s) & 1) for s in key]])).astype(np.float32)
    # a table entry holding the point itself decodes exactly as no table
    same = with_params(blob, header.params[:1] + codewords.pack(codewords.CodewordTable(key[None], point)))
    assert decode_blob(same).tobytes() == plain.tobytes()
    # an arbitrary value moves exactly the vectors with that key, by (value - point) * c
    moved = with_params(blob, header.params[:1] + codewords.pack(codewords.CodewordTable(key[None], point + 1.5)))
    hit = np.all(symbols == key, axis=1)
    diff = (decode_blob(moved) - plain).reshape(-1, 4).astype(np.float64)
    assert hit.sum() >= 1 and np.all(diff[~hit] == 0)
    assert np.allclose(diff[hit], 1.5 * g.scales(header.step), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", STEP_QUANTIZERS)
def test_refinement_lowers_the_error_at_coarse_steps(name):
    w = np.random.default_rng(7).standard_normal(100_000).astype(np.float32)
    cfg = LatticeConfig(step_rel=2.0)
    plain = encode_tensor(w, quantizer=name, config=cfg, seed=3)
    refined = encode_tensor(w, quantizer=name, config=dataclasses.replace(cfg, refine=True), seed=3)
    mse = lambda r: float(np.mean((decode_blob(r.blob).astype(np.float64) - w) ** 2))  # noqa: E731
    n = 1 if name == "scalar" else lat(name).n
    table = codewords.parse(refined.header.params[len(w.shape) if name != "scalar" else 0:] or struct.pack("<I", 0), n)
    assert mse(refined) <= mse(plain) + 1e-12
    if table.size:  # entries only where they pay for their bytes
        assert mse(refined) < mse(plain)


@pytest.mark.parametrize("name", LATTICES)
def test_target_bpw_and_absolute_step(name):
    w = np.random.default_rng(8).standard_normal((256, 256)).astype(np.float32)
    from onnx_udc.quantizers.lattice import position_entropy

    q = by_name(name)
    result = encode_tensor(w, quantizer=name, config=LatticeConfig(target_bpw=3.0), seed=1)
    step = result.header.step
    c = q.lattice.scales(step)
    from onnx_udc.quantizers.lattice import quantize_vectors

    p, _ = quantize_vectors(q.lattice, w.reshape(-1, q.lattice.n).astype(np.float64), c, 1)
    assert position_entropy(q.lattice.to_signed(p)) == pytest.approx(3.0, abs=0.05)
    fixed = encode_tensor(w, quantizer=name, config=LatticeConfig(step=0.25), seed=1)
    assert fixed.header.step == np.float32(0.25)


def test_noise_power_constants():
    assert by_name("scalar").noise_power(2.0) == pytest.approx(4 / 12)
    assert by_name("a2").noise_power(1.0) == pytest.approx(5 / (36 * math.sqrt(3)))
    assert by_name("d4").noise_power(1.0) == pytest.approx(0.0766032)
    assert by_name("e8").noise_power(1.0) == pytest.approx(929 / 12960)


def test_vector_axis_order():
    assert vector_axis_order("conv", (8, 4, 3, 3)) == (0, 1, 2, 3)
    assert vector_axis_order("conv_transpose", (4, 8, 3, 3)) == (1, 0, 2, 3)
    assert vector_axis_order("matmul_b", (64, 32)) == (1, 0)
    assert vector_axis_order("matmul_b", (2, 64, 32)) == (0, 2, 1)
    assert vector_axis_order("gemm_b", (64, 32)) == (1, 0)
    assert vector_axis_order("gemm_b_transposed", (32, 64)) == (0, 1)
    assert vector_axis_order("embedding", (1000, 64)) == (0, 1)
    assert vector_axis_order("bias", (64,)) == (0,)
    # the stored order groups a MatMul weight's columns: vector 0 = column 0's first n rows
    w = np.arange(64 * 8, dtype=np.float32).reshape(64, 8) + 1
    blob = encode_tensor(w, quantizer="d4", config=LatticeConfig(step=1e-3, axis_order=(1, 0)), seed=0).blob
    assert inspect_blob(blob).params[:2] == bytes([1, 0])
    assert np.allclose(decode_blob(blob), w, atol=1e-3)


def _lattice_blob(name="e8", shape=(6, 7)):
    w = np.random.default_rng(9).standard_normal(shape).astype(np.float32)
    return encode_tensor(w, quantizer=name, config=LatticeConfig(step_rel=0.3), seed=4).blob


def _entry(n, key, value):
    return struct.pack(f"<{n}I{n}f", *key, *value)


HOSTILE = [
    ("axis order too short", lambda n: b"\x00"),
    ("axis order repeats", lambda n: b"\x00\x00" + struct.pack("<I", 0)),
    ("axis order out of range", lambda n: b"\x00\x05" + struct.pack("<I", 0)),
    ("no table count", lambda n: b"\x01\x00"),
    ("table count too large", lambda n: b"\x00\x01" + struct.pack("<I", 3) + _entry(n, [0] * n, [0.0] * n)),
    ("table count huge", lambda n: b"\x00\x01" + struct.pack("<I", 0xFFFFFFFF)),
    ("table trailing bytes", lambda n: b"\x00\x01" + struct.pack("<I", 0) + b"\0"),
    ("table value nan", lambda n: b"\x00\x01" + struct.pack("<I", 1) + _entry(n, [0] * n, [float("nan")] * n)),
    ("table value inf", lambda n: b"\x00\x01" + struct.pack("<I", 1) + _entry(n, [1] * n, [float("inf")] * n)),
    ("table keys not increasing", lambda n: b"\x00\x01" + struct.pack("<I", 2) + _entry(n, [2] * n, [0.0] * n)
     + _entry(n, [1] * n, [0.0] * n)),
    ("table keys repeat", lambda n: b"\x00\x01" + struct.pack("<I", 2) + _entry(n, [2] * n, [0.0] * n)
     + _entry(n, [2] * n, [1.0] * n)),
]


@pytest.mark.parametrize("name", LATTICES)
@pytest.mark.parametrize("case,make", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_params_are_rejected_by_both_decoders(library, name, case, make):
    from onnx_udc.native import NativeDecoder

    blob = with_params(_lattice_blob(name), make(lat(name).n))
    for decode in (decode_blob, NativeDecoder(library).decode):
        with pytest.raises(FormatError) as info:
            decode(blob)
        assert info.value.status == "BAD_HEADER"


@pytest.mark.parametrize("params", [b"\x00", struct.pack("<I", 1) + _entry(1, [3], [float("nan")]),
                                    struct.pack("<I", 2) + _entry(1, [3], [0.0]) + _entry(1, [3], [1.0]),
                                    struct.pack("<I", 0x10001)])
def test_hostile_scalar_tables_are_rejected_by_both_decoders(library, params):
    from onnx_udc.native import NativeDecoder

    w = np.random.default_rng(10).standard_normal(50).astype(np.float32)
    blob = with_params(encode_tensor(w, config=LatticeConfig(step_rel=0.3), seed=4).blob, params)
    for decode in (decode_blob, NativeDecoder(library).decode):
        with pytest.raises(FormatError) as info:
            decode(blob)
        assert info.value.status == "BAD_HEADER"


def test_encoder_rejects_bad_configs():
    from onnx_udc import ConfigError

    w = np.ones((4, 4), np.float32)
    with pytest.raises(ConfigError):
        encode_tensor(w, quantizer="d4", config=LatticeConfig(axis_order=(0, 0)))
    with pytest.raises(ConfigError):
        encode_tensor(w, quantizer="e8", config=LatticeConfig(step=1e-12))
    with pytest.raises(ConfigError):
        LatticeConfig(refine_max=-1)


def test_golden_vectors_cover_every_lattice_width_dtype_and_table():
    import json
    from pathlib import Path

    golden = Path(__file__).resolve().parent / "golden"
    seen = set()
    for case in json.loads((golden / "manifest.json").read_text()):
        h = inspect_blob((golden / f"{case['name']}.blob").read_bytes())
        has_table = len(h.params) > len(h.shape) + 4 if h.quantizer >= 2 else bool(h.params)
        seen.add((h.quantizer, h.symbol_width, h.dtype.name, has_table))
    for qid in (2, 3, 4):
        assert {w for q, w, _, _ in seen if q == qid} == {1, 2, 4}
        assert {d for q, _, d, _ in seen if q == qid} == {"FLOAT", "FLOAT16"}
        assert any(q == qid and t for q, _, _, t in seen)
    assert any(q == 1 and t for q, _, _, t in seen)
