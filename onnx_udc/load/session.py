"""The two ways to run a compressed model in onnxruntime.

* portable: register ``library_path()`` with the session options and run the file as
  it is (any language). Each decode kernel decodes its blob once, when the session is
  created, and copies the cached tensor to its output on every run.
* fast (``InferenceSession``): decode every blob once with the C decoder before the
  session is built and hand the dense tensors to onnxruntime as external initializers.
  The model onnxruntime sees is the original one, so inference is exactly as fast
  (constant folding and weight pre-packing included). Each blob is decoded straight into
  the numpy array whose memory the OrtValue shares (no copy), blobs in external data are
  read through memory maps, and decoding uses at most the session's intra-op thread
  count (all CPUs when it is 0, onnxruntime's own default). onnxruntime copies external
  initializers it is handed (measured with 1.31: 256 MiB of weights, 653 MiB peak against
  390 MiB for the same model loaded from a file), so a model whose blobs lie in external
  data (compress writes large models so) has its decoded weights written, a tensor at a
  time, into a scratch folder kept with the session (decoded straight into a memory map
  of its data file), and onnxruntime loads that as it loads the original
  (``prepare_external``): about onnxruntime's own peak.

A model file given by its path that has no decode nodes (the original of ``verify``) is
handed to onnxruntime as it is: onnxruntime reads its weights, not this package.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto

from ..errors import FormatError, ModelError, OutputError, UdcError
from ..format import DType
from ..graph.modelio import (EXTERNAL_ALIGN, PROTO_LIMIT, deferred_bytes, is_deferred, load_model, loaded_copy,
                             proto_size, save_model, tensor_array)
from ..graph.rewrite import blob_bytes, decode_node, decode_nodes, has_decode_nodes, remove_decode_nodes
from ..native import STATUS_NAMES, DecodeOptions, NativeDecoder, _raise_status, library_path, native_decoder


def session_options(options: ort.SessionOptions | None = None) -> ort.SessionOptions:
    """Session options with the custom-op library registered (the portable path)."""
    options = options or ort.SessionOptions()
    options.register_custom_ops_library(library_path())
    return options


def _placeholder(name: str, array: np.ndarray) -> onnx.TensorProto:
    """An initializer that names the tensor and its type; its data comes from an OrtValue."""
    tensor = TensorProto(name=name, data_type=int(DType.from_numpy(array.dtype)), dims=array.shape)
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "onnx_udc.decoded"), ("offset", "0"), ("length", str(array.nbytes))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def decode_parallelism(blobs: int, cpus: int | None = None) -> tuple[int, int]:
    """(pool workers, decode threads per blob) for decoding ``blobs`` blobs at once on
    ``cpus`` CPUs (default: os.cpu_count()): min(blobs, cpus) workers, each blob decoded
    with cpus // workers threads (at least 1), so workers x threads <= cpus."""
    cpus = max(1, cpus or os.cpu_count() or 1)
    workers = max(1, min(blobs, cpus))
    return workers, max(1, cpus // workers)


def prepare_fast(model: onnx.ModelProto, decoder: NativeDecoder | None = None, threads: int = 0
                 ) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """Decode every blob; return the model without decode nodes and the dense tensors.

    Edits ``model`` in place: each decode node is removed and its blob initializer is
    replaced by a placeholder that onnxruntime fills from the returned arrays. Blobs of a
    model loaded with deferred external data are read through memory maps. ``threads``:
    at most this many decode threads in all (0: every CPU).
    """
    decoder = decoder or native_decoder()
    found = decode_nodes(model)
    dense: dict[str, np.ndarray] = {}
    position = {init.name: i for i, init in enumerate(model.graph.initializer)}
    # ctypes releases the GIL, so blobs decode in parallel (brotli itself is serial). No
    # oversubscription: workers x threads per blob <= threads (or the cpu count).
    workers, threads = decode_parallelism(len(found), threads or None)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        arrays = list(pool.map(lambda pair: decode_node(*pair, lambda blob: decoder.decode(blob, threads=threads)),
                               found))
    for (node, init), array in zip(found, arrays):
        name = node.output[0]
        dense[name] = array
        model.graph.initializer[position[init.name]].CopyFrom(_placeholder(name, array))
    remove_decode_nodes(model, set(dense))
    return model, dense


def prepare_external(model: onnx.ModelProto, folder: Path, decoder: NativeDecoder | None = None, threads: int = 0
                     ) -> Path:
    """The fast loader for models too large to hold twice: every blob decoded (at most
    ``threads`` decode threads in all; 0: every CPU) straight into a writable memory map of
    ``folder/weights.bin`` (its blocks allocated first: a full disk is an OutputError, not
    a SIGBUS), the deferred weights copied there too, and the model without its decode
    nodes saved as ``folder/model.onnx`` reading them as external data. onnxruntime then
    loads it as it loads any model with external data (memory-mapped, pre-packed, its own
    buffers) from the page cache this wrote, so the peak is about that of onnxruntime on
    the original. Edits ``model`` in place; returns the model file."""
    decoder = decoder or native_decoder()
    found = decode_nodes(model)
    position = {init.name: i for i, init in enumerate(model.graph.initializer)}
    # the layout: each decoded tensor, then each deferred one, at page-aligned offsets
    infos = [_blob_info(decoder, node, init) for node, init in found]
    blobs = {init.name for _, init in found}
    kept = [i for i, tensor in enumerate(model.graph.initializer) if is_deferred(tensor) and tensor.name not in blobs]
    sizes = [info.nbytes for info in infos] + [int(tensor_array(model.graph.initializer[i]).nbytes) for i in kept]
    offsets, end = [], 0
    for size in sizes:
        offsets.append(end + (-end % EXTERNAL_ALIGN))
        end = offsets[-1] + size
    data = folder / "weights.bin"
    with open(data, "wb+") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, max(end, 1))
        except OSError as exc:
            raise OutputError(f"{data}: cannot hold the {end:,} bytes of decoded weights: "
                              f"{exc.strerror or exc}") from None
        mapped = mmap.mmap(f.fileno(), max(end, 1))
    try:
        workers, per_blob = decode_parallelism(len(found), threads or None)

        def decode(k: int) -> None:
            node, init = found[k]
            out = np.frombuffer(mapped, np.uint8, infos[k].nbytes, offsets[k])
            _decode_into(decoder, node, blob_bytes(init), out, per_blob)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(decode, range(len(found))))
        for j, i in enumerate(kept, start=len(found)):
            source = np.ascontiguousarray(tensor_array(model.graph.initializer[i]))
            mapped[offsets[j]:offsets[j] + sizes[j]] = memoryview(source).cast("B")
        # no msync: onnxruntime reads these pages from the page cache; the disk may take its time
    finally:
        try:
            mapped.close()
        except BufferError:  # a failed decode's traceback still holds a view: the map goes with it
            pass
    names = set()
    for k, ((node, init), info) in enumerate(zip(found, infos)):
        name = node.output[0]
        names.add(name)
        shape = [int(d) for d in info.shape[: info.ndim]]
        model.graph.initializer[position[init.name]].CopyFrom(_external(name, info.dtype, shape, offsets[k], sizes[k]))
    remove_decode_nodes(model, names)
    for j, i in enumerate(kept, start=len(found)):
        tensor = model.graph.initializer[i]
        model.graph.initializer[i].CopyFrom(_external(tensor.name, tensor.data_type, list(tensor.dims), offsets[j],
                                                      sizes[j]))
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())  # small: every large tensor is in weights.bin
    return path


def _external(name: str, data_type: int, dims, offset: int, length: int) -> onnx.TensorProto:
    tensor = TensorProto(name=name, data_type=int(data_type), dims=dims)
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "weights.bin"), ("offset", str(offset)), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def _blob_info(decoder: NativeDecoder, node: onnx.NodeProto, init: onnx.TensorProto):
    """The native library's view of a blob's header (udc_inspect), its dtype checked
    against the decode node's op; errors name the tensor."""
    name = node.output[0]
    try:
        info = decoder._inspect(np.frombuffer(blob_bytes(init), np.uint8))  # the C API's udc_inspect
    except UdcError as exc:
        raise type(exc)(f"{name}: {exc}") from None
    try:
        dtype = DType(info.dtype)
    except ValueError:
        raise FormatError(f"{name}: unsupported element type code {info.dtype}") from None
    expected = DType.from_op_type(node.op_type)
    if dtype is not expected:
        raise ModelError(f"{name}: blob holds {dtype.numpy.__name__}, op {node.op_type} outputs {expected.name}")
    return info


def _decode_into(decoder: NativeDecoder, node: onnx.NodeProto, blob, out: np.ndarray, threads: int) -> None:
    """udc_decode_ex of ``blob`` into ``out`` (its bytes, exactly the blob's); errors name the tensor."""
    buf = np.frombuffer(blob, np.uint8)
    err = ctypes.create_string_buffer(256)
    status = decoder._decode_ex(buf.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), buf.size, out.ctypes.data,
                                out.nbytes, ctypes.byref(DecodeOptions.make(threads)), err, 256)
    if status:
        try:
            _raise_status(status, err.value.decode(errors="replace"))
        except UdcError as exc:
            raise type(exc)(f"{node.output[0]}: {exc}") from None


class InferenceSession(ort.InferenceSession):
    """An ``onnxruntime.InferenceSession`` for compressed (or plain) models.

    fast=True (default): the zero-overhead loader described in the module docstring.
    fast=False: the portable path, the custom-op library registered and the file run
    as it is. Any other argument is passed to onnxruntime unchanged.
    """

    def __init__(
        self,
        path_or_model: str | os.PathLike | bytes | onnx.ModelProto,
        sess_options: ort.SessionOptions | None = None,
        providers=None,
        provider_options=None,
        *,
        fast: bool = True,
        **kwargs,
    ):
        options = sess_options or ort.SessionOptions()
        model = _as_model(path_or_model)
        if not isinstance(path_or_model, (bytes, bytearray, onnx.ModelProto)) and not has_decode_nodes(model):
            fast = False  # a plain model file: onnxruntime reads it (and its external data) itself
            source = os.fspath(path_or_model)
        elif not fast and not isinstance(path_or_model, (bytes, bytearray, onnx.ModelProto)):
            source = os.fspath(path_or_model)  # the portable path runs the file as it is
        else:
            source = None
        if fast and deferred_bytes(model):  # blobs in external data: the decoded weights go to external data too
            self._udc_folder = tempfile.TemporaryDirectory(prefix="udc-session-")
            folder = Path(self._udc_folder.name)
            source = os.fspath(prepare_external(model, folder, threads=options.intra_op_num_threads))
            if has_decode_nodes(model):  # decode nodes inside subgraphs run as custom ops
                options.register_custom_ops_library(library_path())
        elif fast:
            model, dense = prepare_fast(model, threads=options.intra_op_num_threads)
            dense.update(_deferred_arrays(model))  # weights kept dense, not read at load: handed over the same way
            names = list(dense)
            values = [ort.OrtValue.ortvalue_from_numpy(dense[n]) for n in names]
            if names:
                options.add_external_initializers(names, values)
            if has_decode_nodes(model):  # decode nodes inside subgraphs run as custom ops
                options.register_custom_ops_library(library_path())
            # onnxruntime reads these buffers in place: keep them alive with the session.
            self._udc_dense = dense
            self._udc_values = values
        elif source is None or has_decode_nodes(model):
            options.register_custom_ops_library(library_path())
        if source is None and proto_size(model) < PROTO_LIMIT:
            source = loaded_copy(model).SerializeToString()
        elif source is None:  # 2 GiB and more is no protobuf: through a file with external data, kept with the session
            self._udc_folder = tempfile.TemporaryDirectory(prefix="udc-session-")
            path = Path(self._udc_folder.name) / "model.onnx"
            save_model(model, path)
            source = os.fspath(path)
        del model
        try:
            super().__init__(
                source, sess_options=options, providers=providers or ["CPUExecutionProvider"],
                provider_options=provider_options, **kwargs,
            )
        except Exception as exc:  # onnxruntime raises its own Exception subclasses
            raise _session_error(str(exc)) from None


def _deferred_arrays(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The deferred initializers of ``model`` (modelio.load_model(defer_external=True)),
    each read into an array and replaced in place by a placeholder naming it."""
    arrays = {}
    for i, tensor in enumerate(model.graph.initializer):
        if is_deferred(tensor):
            arrays[tensor.name] = np.array(tensor_array(tensor))  # a private copy: the file may change later
            model.graph.initializer[i].CopyFrom(_placeholder(tensor.name, arrays[tensor.name]))
    return arrays


def _session_error(message: str) -> Exception:
    """onnxruntime's exception -> a typed error; blob errors of the kernel keep their status."""
    message = " ".join(message.split())
    marker = "onnx_udc: "
    if marker in message:
        detail = message[message.index(marker) + len(marker):]
        found = re.search(r"\b(" + "|".join(STATUS_NAMES[1:]) + r"):", detail)
        status = found.group(1) if found else "BAD_HEADER"
        return FormatError(f"custom op failed at session creation: {detail}", status)
    return ModelError(f"onnxruntime cannot create a session: {message}")


def _as_model(path_or_model) -> onnx.ModelProto:
    if isinstance(path_or_model, onnx.ModelProto):
        copy = onnx.ModelProto()
        copy.CopyFrom(path_or_model)
        return copy
    if isinstance(path_or_model, (bytes, bytearray)):
        model = onnx.ModelProto()
        try:
            model.ParseFromString(bytes(path_or_model))
        except Exception:
            raise ModelError("bytes are not a valid ONNX model") from None
        return model
    return load_model(path_or_model, defer_external=True)  # external weights and blobs read from maps when used

