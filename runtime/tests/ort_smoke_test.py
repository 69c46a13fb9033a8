"""Smoke test of libonnx_udc.so inside onnxruntime (CTest: udc_ort_smoke).

Builds tiny models by hand whose weights come from ai.onnx_udc decode nodes, with blobs
of the raw quantizer + store coder (lossless, so exact results are known without an
encoder), and checks: results, the five op types, errors at session creation for
corrupted / mismatched blobs (an exception, not a crash), a blob fed as a graph input
(decoded in Compute), and the C++ example udc_run.

    python ort_smoke_test.py --library build/libonnx_udc.so --workdir /tmp/x [--udc-run build/examples/udc_run/udc_run]
"""
import argparse
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

DTYPE_CODE = {np.float32: 1, np.uint8: 2, np.int8: 3, np.int32: 6, np.float16: 10}
OP_NAME = {1: "Decode", 2: "DecodeUInt8", 3: "DecodeInt8", 6: "DecodeInt32", 10: "DecodeFloat16"}


def raw_store_blob(arr):
    """FORMAT.md: quantizer 0 (raw), coder 0 (store), planar symbol bytes."""
    arr = np.array(arr, order="C")  # (ascontiguousarray would turn a 0-d array into 1-d)
    code = DTYPE_CODE[arr.dtype.type]
    width = arr.dtype.itemsize
    planar = arr.reshape(-1).view(np.uint8).reshape(-1, width).T.copy().tobytes()
    head = b"UDCB" + struct.pack("<HBBBBBB", 1, 0, 0, code, arr.ndim, width, 0)
    rest = struct.pack("<fIQQ", 0.0, 0, 0, len(planar)) + b"".join(struct.pack("<Q", d) for d in arr.shape)
    rest += planar
    crc = zlib.crc32(rest, zlib.crc32(head))
    return head + struct.pack("<I", crc) + rest


def blob_tensor(name, blob):
    return numpy_helper.from_array(np.frombuffer(blob, dtype=np.uint8).copy(), name)


def make_model(nodes, inputs, outputs, initializers, value_info=()):
    graph = helper.make_graph(nodes, "udc_smoke", inputs, outputs, initializers, value_info=list(value_info))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx_udc", 1)])
    model.ir_version = 8
    return model


def session(model, library):
    so = ort.SessionOptions()
    so.register_custom_ops_library(library)
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def matmul_model(blob, op="Decode"):
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 3])
    nodes = [
        helper.make_node(op, ["W__udc_blob"], ["W"], name="W_decode", domain="ai.onnx_udc"),
        helper.make_node("MatMul", ["X", "W"], ["Y"], name="matmul"),
    ]
    vi = [helper.make_tensor_value_info("W", TensorProto.FLOAT, [4, 3])]
    return make_model(nodes, [x], [y], [blob_tensor("W__udc_blob", blob)], vi)


def expect_session_error(model, library, *needles):
    try:
        session(model, library)
    except Exception as e:  # onnxruntime raises its own exception types
        msg = str(e)
        missing = [n for n in needles if n not in msg]
        assert not missing, f"error message lacks {missing}: {msg}"
        return msg
    raise AssertionError("session creation succeeded on a bad blob")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--udc-run")
    args = ap.parse_args(argv)
    os.makedirs(args.workdir, exist_ok=True)
    rng = np.random.default_rng(0)

    # 1. MatMul whose weight is decoded from a constant blob.
    w = rng.standard_normal((4, 3)).astype(np.float32)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    model = matmul_model(raw_store_blob(w))
    y = session(model, args.library).run(None, {"X": x})[0]
    ref = x @ w
    assert np.allclose(y, ref, rtol=1e-6, atol=1e-6), (y, ref)
    print("matmul with decoded weight: ok")

    # 2. The five op types, each output straight from a decode node (no graph inputs).
    tensors = {
        1: rng.standard_normal((3, 5)).astype(np.float32),
        2: rng.integers(0, 256, (7,), dtype=np.uint8),
        3: rng.integers(-128, 128, (2, 2, 3), dtype=np.int8),
        6: rng.integers(-2**31, 2**31, (4, 1), dtype=np.int64).astype(np.int32),
        10: rng.standard_normal((6,)).astype(np.float16),
    }
    nodes, outs, inits = [], [], []
    for code, arr in tensors.items():
        name = f"t{code}"
        inits.append(blob_tensor(name + "__udc_blob", raw_store_blob(arr)))
        nodes.append(helper.make_node(OP_NAME[code], [name + "__udc_blob"], [name], name=name + "_decode",
                                      domain="ai.onnx_udc"))
        outs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(arr.dtype), list(arr.shape)))
    got = session(make_model(nodes, [], outs, inits), args.library).run(None, {})
    for (code, arr), g in zip(tensors.items(), got):
        assert g.dtype == arr.dtype and g.shape == arr.shape and g.tobytes() == arr.tobytes(), OP_NAME[code]
    print("five op types: ok")

    # 3. Errors at session creation: an exception naming the status and the node.
    bad = bytearray(raw_store_blob(w))
    bad[-1] ^= 0x10
    msg = expect_session_error(matmul_model(bytes(bad)), args.library, "CHECKSUM_MISMATCH", "W_decode")
    print("corrupted blob ->", msg.splitlines()[-1][:160])
    msg = expect_session_error(matmul_model(raw_store_blob(w)[:-3]), args.library, "TRUNCATED")
    msg = expect_session_error(matmul_model(raw_store_blob(w.astype(np.float16))), args.library, "BAD_HEADER",
                               "FLOAT16")
    print("dtype mismatch ->", msg.splitlines()[-1][:160])

    # 4. Blob fed as a graph input: decoded in Compute, errors at run time.
    b = helper.make_tensor_value_info("B", TensorProto.UINT8, [None])
    o = helper.make_tensor_value_info("W", TensorProto.FLOAT, None)
    dyn = make_model([helper.make_node("Decode", ["B"], ["W"], name="dyn", domain="ai.onnx_udc")], [b], [o], [])
    sess = session(dyn, args.library)
    for arr in (w, tensors[1], np.zeros((0, 5), np.float32), np.float32(3.5).reshape(())):
        g = sess.run(None, {"B": np.frombuffer(raw_store_blob(arr), np.uint8)})[0]
        assert g.shape == arr.shape and g.tobytes() == arr.tobytes()
    try:
        sess.run(None, {"B": np.frombuffer(bytes(bad), np.uint8)})
        raise AssertionError("run succeeded on a corrupted blob")
    except Exception as e:
        assert "CHECKSUM_MISMATCH" in str(e), str(e)
    print("blob as graph input: ok")

    # 5. The C++ example udc_run (runtime/examples/udc_run), both load paths.
    if args.udc_run:
        xin = rng.standard_normal((2, 4)).astype(np.float32)
        paths = {k: os.path.join(args.workdir, k) for k in ("m.onnx", "orig.onnx", "wrong.onnx", "x.npy", "bad.onnx")}
        onnx.save(matmul_model(raw_store_blob(w)), paths["m.onnx"])
        x_info = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 4])
        y_info = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 3])
        for name, weight in (("orig.onnx", w), ("wrong.onnx", w + 1)):
            dense = numpy_helper.from_array(weight.astype(np.float32), "W")
            onnx.save(make_model([helper.make_node("MatMul", ["X", "W"], ["Y"])], [x_info], [y_info], [dense], []),
                      paths[name])
        onnx.save(matmul_model(bytes(bad)), paths["bad.onnx"])
        np.save(paths["x.npy"], xin)
        base = [args.udc_run, "-i", "X=" + paths["x.npy"], "--load", "both", "--library", args.library,
                "--runs", "2", "--atol", "1e-5"]
        r = subprocess.run([*base, paths["m.onnx"], "--original", paths["orig.onnx"]], capture_output=True, text=True)
        print(r.stdout.strip())
        assert r.returncode == 0, r.stdout + r.stderr
        r = subprocess.run([*base, paths["m.onnx"], "--original", paths["wrong.onnx"]], capture_output=True, text=True)
        assert r.returncode == 1, r.stdout + r.stderr
        r = subprocess.run([*base, paths["bad.onnx"]], capture_output=True, text=True)
        assert r.returncode == 3 and "CHECKSUM_MISMATCH" in r.stderr, r.stdout + r.stderr
        print("udc_run: ok")
    print("all ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
