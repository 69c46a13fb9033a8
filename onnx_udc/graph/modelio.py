"""Loading and saving ONNX models with clear errors and atomic writes.

Models of 2 GiB or more cannot be one protobuf message (upb refuses to serialise or even
size them): ``proto_size`` sizes them tensor by tensor, and ``save_model`` writes their
large tensors straight into ``<name>.data`` one at a time (never a second copy of the
model in memory), then the small remaining proto. Both files are fsynced, then renamed
into place, and the folder is fsynced (the renames reach the disk). The staging folder
beside the output is removed on the way out whatever happens; one left by a killed
process (SIGKILL, a crash, power loss) is removed by the next save to that folder
(``clean_stale_staging``: the pid and host recorded in its name).

Deferred external data (``load_model(defer_external=True)``): the large numeric
initializers of the main graph are not read; each keeps a reference to its bytes in the
external file (checked: inside the model's folder, long enough, exactly its dims x element
size), ``tensor_array`` reads it through a memory map when asked, and ``save_model``,
``proto_size`` and ``load_deferred`` treat it as the in-memory tensor it stands for: the
same bytes are written as for a model loaded whole, a tensor at a time.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError, EncodeError
from onnx import numpy_helper
from onnx.external_data_helper import load_external_data_for_model
from onnx.helper import tensor_dtype_to_np_dtype

from ..errors import ModelError, OutputError
from .validate import check_references, dense_bytes, tensor_problem, tensors_with_place

# Protobuf cannot serialize a message of 2 GiB or more; stay well below it.
PROTO_LIMIT = (1 << 31) - (64 << 20)
EXTERNAL_THRESHOLD = 1024  # tensors of at least this many bytes go to the external data file
EXTERNAL_ALIGN = 4096  # offsets of external tensors (page aligned: onnxruntime can map them)
STAGING_TAG = ".udc-staging-"  # staging folder names: .<output name>.udc-staging-<pid>@<host>-<random>
_HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "localhost"
DEFERRED_KEY = "onnx_udc.deferred"  # external_data key marking a deferred tensor (never written to a file)
DEFER_MIN_BYTES = EXTERNAL_THRESHOLD  # smaller external tensors are read at load time
STREAM_MIN_BYTES = 64 << 20  # models this large are serialised a tensor at a time
SPILL_MIN_BYTES = 512 << 20  # deferred weights from which a command's output is written as produced, with external data
# element types whose raw bytes are numpy's (little-endian) layout: deferred tensors are read as they lie
_DEFERRABLE = frozenset({onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                         onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT16, onnx.TensorProto.UINT16,
                         onnx.TensorProto.INT32, onnx.TensorProto.UINT32, onnx.TensorProto.INT64,
                         onnx.TensorProto.UINT64})
_STAGING_NAME = re.compile(r"^\..+" + re.escape(STAGING_TAG) + r"(?P<pid>\d+)(?:@(?P<host>[A-Za-z0-9._]+))?-[a-z0-9_]+$")


def load_model(path: str | os.PathLike, load_external_data: bool = True, check: bool = True,
               defer_external: bool = False) -> onnx.ModelProto:
    """Read an ONNX model (and its external data), raising ModelError on any problem.

    External data must lie inside the model's folder and hold every byte its tensors
    need (checked before it is read). With ``check`` (the default) every tensor's data
    must match its dims x element size (graph.validate.check_tensors: initializers of
    every graph and tensor attributes such as Constant values) and every node input must
    be defined in its scope (check_references); this reads each tensor's bytes once more.

    ``defer_external``: the main graph's numeric initializers of at least DEFER_MIN_BYTES
    in external data whose length is exactly their dims x element size are not read (the
    file must stay in place until the model is saved): ``tensor_array`` reads one through
    a memory map, ``load_deferred`` reads them all.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file")
    if path.is_dir():
        raise ModelError(f"{path}: is a directory, not an ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeWarning) as exc:
        raise ModelError(f"{path}: not a valid ONNX model ({type(exc).__name__})") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - whatever onnx raises on a file it cannot parse
        raise ModelError(f"{path}: not a valid ONNX model ({_first_line(exc)})") from None
    if not model.HasField("graph") or model.ir_version == 0:
        raise ModelError(f"{path}: not a valid ONNX model (no graph or IR version)")
    _strip_markers(model)  # a file's own "deferred" keys would point anywhere: only ours count
    if load_external_data:
        _check_external(path, model)
        if defer_external:
            _defer(path, model)
        try:
            with warnings.catch_warnings():  # keys onnx does not know are ignored: harmless, not a stray message
                warnings.filterwarnings("ignore", "Ignoring unknown external data key", UserWarning)
                load_external_data_for_model(model, str(path.parent))
        except FileNotFoundError as exc:
            raise ModelError(f"{path}: external data file missing: {exc.filename}") from None
        except OSError as exc:
            raise ModelError(f"{path}: cannot read external data: {exc.strerror or exc}") from None
        except Exception as exc:  # noqa: BLE001 - onnx's checker.ValidationError and the like
            raise ModelError(f"{path}: bad external data ({_first_line(exc)})") from None
    if check:
        try:
            for tensor, place in tensors_with_place(model.graph):
                problem = None if is_deferred(tensor) else tensor_problem(tensor)  # deferred: checked by _defer
                if problem is not None:
                    raise ModelError(f"{place}: {problem}")
            check_references(model)
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from None
    return model


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _text(value: str | bytes) -> str:
    """A string field of a proto (upb hands over bytes where they are not valid UTF-8)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _check_external(path: Path, model: onnx.ModelProto) -> None:
    """Every external-data reference of ``model`` (read from ``path``) is a file inside the
    model's folder holding all the bytes its tensor needs; ModelError naming the tensor,
    the file and the byte counts otherwise."""
    base = path.parent.resolve()
    for tensor, place in tensors_with_place(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {_text(e.key): e.value for e in tensor.external_data}
        location = info.get("location", "")
        what = f"{path}: external data of {place}"
        if isinstance(location, bytes) or any(isinstance(info.get(k), bytes) for k in ("offset", "length")):
            raise ModelError(f"{what} has a location, offset or length that is not UTF-8 text")
        if not location:
            raise ModelError(f"{what} has no location")
        if os.path.isabs(location):
            raise ModelError(f"{what} is an absolute path ({location}); it must lie in the model's folder")
        if "\0" in location:
            raise ModelError(f"{what} has a NUL byte in its location ({location!r})")
        try:
            target = (base / location).resolve()
            inside = target.is_relative_to(base)
            is_file = inside and target.is_file()
        except (OSError, ValueError) as exc:  # a symlink loop, a name too long
            raise ModelError(f"{what} has an unusable location {location!r} ({_first_line(exc)})") from None
        if not inside:
            raise ModelError(f"{what} points outside the model's folder: {location}")
        if not is_file:
            raise ModelError(f"{what} is missing: {location} is not a file")
        try:
            offset = int(info.get("offset", 0) or 0)
            length = int(info["length"]) if info.get("length") else None
        except ValueError:
            raise ModelError(f"{what} has a bad offset or length ({info.get('offset')!r}, {info.get('length')!r})") from None
        need = length if length is not None else dense_bytes(tensor.data_type, tensor.dims)
        have = max(0, target.stat().st_size - offset)
        if need is not None and have < need:
            raise ModelError(f"{what} is truncated: {location} holds {have:,} of its {need:,} bytes (from offset {offset:,})")


def _strip_markers(model: onnx.ModelProto) -> None:
    for tensor, _ in tensors_with_place(model.graph):
        if any(_text(e.key) == DEFERRED_KEY for e in tensor.external_data):
            kept = [e for e in tensor.external_data if _text(e.key) != DEFERRED_KEY]
            del tensor.external_data[:]
            tensor.external_data.extend(kept)


def _defer(path: Path, model: onnx.ModelProto) -> None:
    """Mark the deferrable external initializers of the main graph (after _check_external):
    data_location DEFAULT, as a loaded tensor has, and external_data naming the resolved
    file, offset, length and DEFERRED_KEY. The others stay external, to be loaded."""
    if sys.byteorder != "little":
        return
    base = path.parent.resolve()
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL or tensor.data_type not in _DEFERRABLE:
            continue
        info = {_text(e.key): _text(e.value) for e in tensor.external_data}
        need = dense_bytes(tensor.data_type, tensor.dims)
        if (tensor_problem(tensor) is not None or not info.get("length") or need is None or need < DEFER_MIN_BYTES
                or int(info["length"]) != need):
            continue  # loaded as usual: its problem, if any, is reported as for a loaded model
        target = (base / info["location"]).resolve()
        offset = int(info.get("offset", 0) or 0)
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT
        for key, value in (("location", str(target)), ("offset", str(offset)), ("length", str(need)),
                           (DEFERRED_KEY, "1")):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value


def is_deferred(tensor: onnx.TensorProto) -> bool:
    """Whether ``tensor`` is a deferred one of load_model(defer_external=True)."""
    return bool(tensor.external_data) and tensor.data_location != onnx.TensorProto.EXTERNAL and any(
        e.key == DEFERRED_KEY for e in tensor.external_data)


def _deferred_place(tensor: onnx.TensorProto) -> tuple[str, int, int]:
    info = {e.key: e.value for e in tensor.external_data}
    return info["location"], int(info["offset"]), int(info["length"])


def _map(tensor: onnx.TensorProto) -> tuple[mmap.mmap | None, int, int]:
    """(read-only map, offset of the tensor's bytes in it, their length) of a deferred tensor."""
    location, offset, length = _deferred_place(tensor)
    if length == 0:
        return None, 0, 0
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    try:
        with open(location, "rb") as f:
            mapping = mmap.mmap(f.fileno(), offset - start + length, access=mmap.ACCESS_READ, offset=start)
        return mapping, offset - start, length
    except (OSError, ValueError) as exc:  # gone or truncated since the model was loaded
        raise ModelError(f"external data of initializer {tensor.name!r}: cannot read {length:,} bytes at offset "
                         f"{offset:,} of {location}: {getattr(exc, 'strerror', None) or exc}") from None


@contextlib.contextmanager
def _mapped(tensor: onnx.TensorProto) -> Iterator[memoryview]:
    """The bytes of a deferred tensor, mapped read-only (unmapped on the way out)."""
    mapping, at, length = _map(tensor)
    if mapping is None:
        yield memoryview(b"")
        return
    view = memoryview(mapping)[at:at + length]
    try:
        yield view
    finally:
        view.release()
        mapping.close()


def tensor_array(tensor: onnx.TensorProto) -> np.ndarray:
    """numpy_helper.to_array(tensor), and for a deferred tensor the same values read through
    a memory map of its file (read-only; pages are read when touched, and the map goes
    with the array)."""
    if not is_deferred(tensor):
        return numpy_helper.to_array(tensor)
    dtype = tensor_dtype_to_np_dtype(tensor.data_type)
    dims = tuple(int(d) for d in tensor.dims)
    mapping, at, length = _map(tensor)
    if mapping is None:
        return np.zeros(dims, dtype)
    return np.frombuffer(mapping, dtype, count=length // dtype.itemsize, offset=at).reshape(dims)


def deferred_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the deferred tensors of ``model`` (what a load of it did not read)."""
    return sum(_deferred_place(t)[2] for t in model.graph.initializer if is_deferred(t))


def stored_bytes(path: str | os.PathLike, model: onnx.ModelProto) -> int:
    """Bytes of the model file ``path`` plus the external data files ``model`` (loaded from
    it) reads, each counted once."""
    path = Path(path)
    files = set()
    for tensor, _ in tensors_with_place(model.graph):
        if is_deferred(tensor):
            files.add(Path(_deferred_place(tensor)[0]))
        elif tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = {_text(e.key): _text(e.value) for e in tensor.external_data}.get("location")
            if location:
                files.add((path.parent / location).resolve())
    total = path.stat().st_size
    for file in files:
        with contextlib.suppress(OSError):
            total += file.stat().st_size
    return total


def load_deferred(model: onnx.ModelProto) -> onnx.ModelProto:
    """Read every deferred tensor of ``model`` into memory (in place): the model a plain
    load_model gives. Returns ``model``."""
    for tensor in model.graph.initializer:
        load_deferred_tensor(tensor)
    return model


def load_deferred_tensor(tensor: onnx.TensorProto) -> None:
    """Read one deferred tensor into memory (in place); other tensors are left as they are."""
    if is_deferred(tensor):
        with _mapped(tensor) as data:
            tensor.raw_data = bytes(data)
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT


def proto_size(model: onnx.ModelProto) -> int:
    """The serialised size of ``model`` in bytes (deferred tensors counted as loaded), summed
    over its parts: upb sizes a message by serialising it (a transient buffer of up to twice
    the model), and refuses to at 2 GiB. A model whose own or graph's fields this protobuf
    does not know is sized whole (or, at 2 GiB and more, estimated within a few bytes per
    tensor)."""
    parts = _parts(model)
    if parts is not None:
        try:
            return _parted_size(model, parts)[0]
        except (EncodeError, ValueError):  # one part of 2 GiB or more (nodes, functions)
            pass
    g = model.graph
    if not any(is_deferred(t) for t in g.initializer):
        try:
            return model.ByteSize()
        except (EncodeError, ValueError):
            pass
    total = sum(_loaded_size(t) + 6 for t in g.initializer) + sum(n.ByteSize() + 4 for n in g.node)
    for part in (g.input, g.output, g.value_info, g.sparse_initializer):
        total += sum(p.ByteSize() + 4 for p in part)
    total += sum(o.ByteSize() + 4 for o in model.opset_import) + sum(f.ByteSize() + 4 for f in model.functions)
    return total + 64


def _parts(model: onnx.ModelProto):
    """(model fields before / after its graph, graph fields before / after its initializers)
    as four small messages, or None when the model or its graph holds unknown fields (which
    the split would lose) or has no graph."""
    if not model.HasField("graph") or _unknown(model) or _unknown(model.graph):
        return None
    try:
        return (*_split(model, _GRAPH), *_split(model.graph, _INITIALIZER))
    except (UnicodeDecodeError, TypeError, ValueError):  # a string field that is not UTF-8 cannot be copied
        return None


def _unknown(message) -> bool:
    try:
        from google.protobuf import unknown_fields
    except ImportError:  # an older protobuf: say yes, the model is then sized whole
        return True
    return len(unknown_fields.UnknownFieldSet(message)) > 0


def _parted_size(model: onnx.ModelProto, parts) -> tuple[int, int, list[int]]:
    """(model bytes, graph bytes, each initializer's bytes) from the parts, no whole serialisation."""
    low_m, high_m, low_g, high_g = parts
    sizes = [_loaded_size(t) for t in model.graph.initializer]
    graph = low_g.ByteSize() + sum(map(_field, sizes)) + high_g.ByteSize()
    return low_m.ByteSize() + _field(graph) + high_m.ByteSize(), graph, sizes


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(size: int) -> int:
    """Bytes of a length-delimited field of a one-byte tag holding ``size`` bytes."""
    return 1 + len(_varint(size)) + size


def _split(message, number: int):
    """Two new messages of ``message``'s type: its set fields numbered below ``number``, and
    those above (protobuf writes fields in number order, so the two serialisations with the
    field ``number`` between them are the message's serialisation)."""
    low, high = type(message)(), type(message)()
    for field, value in message.ListFields():
        if field.number == number:
            continue
        dst = low if field.number < number else high
        if field.is_repeated:
            getattr(dst, field.name).extend(value)
        elif field.type == field.TYPE_MESSAGE:
            getattr(dst, field.name).CopyFrom(value)
        else:
            setattr(dst, field.name, value)
    return low, high


def _shell(tensor: onnx.TensorProto) -> onnx.TensorProto:
    """A deferred tensor as it is loaded, without its raw_data (external_data cleared)."""
    shell = onnx.TensorProto()
    shell.CopyFrom(tensor)
    del shell.external_data[:]
    return shell


_RAW_DATA = 9  # TensorProto.raw_data
_INITIALIZER = 5  # GraphProto.initializer
_GRAPH = 7  # ModelProto.graph


def _loaded_size(tensor: onnx.TensorProto) -> int:
    """Serialised bytes of ``tensor`` as loaded (a deferred one with its raw_data)."""
    if not is_deferred(tensor):
        return tensor.ByteSize()
    length = _deferred_place(tensor)[2]
    return _shell(tensor).ByteSize() + _field(length)


def _write_tensor(f, tensor: onnx.TensorProto) -> None:
    """One initializer as loaded, written to ``f`` (a deferred one straight from its map)."""
    if not is_deferred(tensor):
        f.write(tensor.SerializeToString())
        return
    low, high = _split(_shell(tensor), _RAW_DATA)
    f.write(low.SerializeToString())
    with _mapped(tensor) as data:
        f.write(bytes([_RAW_DATA << 3 | 2]) + _varint(len(data)))
        f.write(data)
    f.write(high.SerializeToString())


def _write_streamed(model: onnx.ModelProto, path: Path) -> bool:
    """``model`` serialised into ``path`` a tensor at a time (deferred ones from their maps):
    the bytes of SerializeToString of the loaded model, never a second copy of it in memory.
    False (nothing written) for a model that must be serialised whole (unknown fields)."""
    parts = _parts(model)
    if parts is None:
        return False
    low_m, high_m, low_g, high_g = parts
    _, graph, sizes = _parted_size(model, parts)
    with open(path, "wb") as f:
        f.write(low_m.SerializeToString())
        f.write(bytes([_GRAPH << 3 | 2]) + _varint(graph))
        f.write(low_g.SerializeToString())
        for tensor, size in zip(model.graph.initializer, sizes):
            f.write(bytes([_INITIALIZER << 3 | 2]) + _varint(size))
            _write_tensor(f, tensor)
        f.write(high_g.SerializeToString())
        f.write(high_m.SerializeToString())
        f.flush()
        os.fsync(f.fileno())
    return True


def save_model(model: onnx.ModelProto, path: str | os.PathLike, external: bool | None = None) -> None:
    """Write atomically: files in a staging folder beside the target, fsynced, renamed into
    place. Models too large for one protobuf (or any model, with ``external=True``) keep
    their tensors of EXTERNAL_THRESHOLD bytes and more in ``<name>.data``, written a tensor
    at a time (``model`` itself is not modified); models of STREAM_MIN_BYTES and more, or
    with deferred tensors, are serialised a tensor at a time (the same bytes)."""
    path = Path(path)
    data_name = path.name + ".data"
    with staging_folder(path) as staging:
        size = proto_size(model)
        if external or (external is None and size > PROTO_LIMIT):
            shell = _write_external(model, staging / data_name, data_name)
            _write_synced(staging / path.name, shell.SerializeToString())
            os.replace(staging / data_name, path.parent / data_name)
        elif not ((size >= STREAM_MIN_BYTES or any(is_deferred(t) for t in model.graph.initializer))
                  and _write_streamed(model, staging / path.name)):
            _write_synced(staging / path.name, loaded_copy(model).SerializeToString())
        os.replace(staging / path.name, path)
        _sync_folder(path.parent)


def loaded_copy(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model``, or a copy with its deferred tensors read (a model that cannot be streamed)."""
    if not any(is_deferred(t) for t in model.graph.initializer):
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return load_deferred(copy)


class Spill:
    """A scratch file for tensors produced one at a time (the blobs of a compress, the dense
    weights of a decompress): each is written as it comes and stands in the model as a
    deferred tensor, so nothing of it stays in memory and ``save_model`` copies it into the
    output a tensor at a time. Made by ``spill_file``; offsets are page aligned."""

    def __init__(self, path: Path):
        self.path = path
        self.bytes = 0  # payload bytes written
        self.sealed = False  # linked as an output's data file: no more writes
        self._file = open(path, "wb", buffering=0)
        self._end = 0
        _SPILLS[str(path)] = self

    def put(self, name: str, data, data_type: int, dims) -> onnx.TensorProto:
        """Write ``data`` (a buffer: bytes, a numpy array, a memoryview) and return the
        deferred tensor ``name`` of ``data_type`` and ``dims`` that reads it back."""
        if self.sealed:
            raise OutputError(f"{self.path}: this spill is an output's data file now; it takes no more tensors")
        view = memoryview(np.ascontiguousarray(data) if isinstance(data, np.ndarray) else data).cast("B")
        start = self._end + (-self._end % EXTERNAL_ALIGN)
        self._file.seek(start)
        while view:  # a raw file may write less than asked
            done = self._file.write(view)
            view = view[done:]
        self._end = self._file.tell()
        length = self._end - start
        self.bytes += length
        tensor = onnx.TensorProto(name=name, data_type=data_type, dims=[int(d) for d in dims])
        for key, value in (("location", str(self.path)), ("offset", str(start)), ("length", str(length)),
                           (DEFERRED_KEY, "1")):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        return tensor

    def put_tensor(self, tensor: onnx.TensorProto) -> onnx.TensorProto | None:
        """A tensor that ``save_model`` would move to external data (EXTERNAL_THRESHOLD bytes
        and more, not external already) written here; its deferred stand-in, or None for a
        tensor that stays in the proto. Tensors put in their initializer order are laid out
        as save_model lays out ``<name>.data``, which then takes this file as it is."""
        if tensor.data_location == onnx.TensorProto.EXTERNAL or _payload_bytes(tensor) < EXTERNAL_THRESHOLD:
            return None
        with contextlib.ExitStack() as stack:
            data = stack.enter_context(_mapped(tensor)) if is_deferred(tensor) else _raw(tensor)
            out = self.put(tensor.name, data, tensor.data_type, tensor.dims)
        if tensor.HasField("doc_string"):
            out.doc_string = tensor.doc_string
        return out

    def close(self) -> None:
        self._file.close()
        _SPILLS.pop(str(self.path), None)


_SPILLS: dict[str, Spill] = {}  # open spills by path: the only files save_model may take as a data file


def external_reference(tensor: onnx.TensorProto, location: str) -> onnx.TensorProto:
    """A deferred tensor as an ONNX external-data tensor whose bytes lie in ``location``
    (relative to the model file that will hold it) at the same offset and length."""
    _, offset, length = _deferred_place(tensor)
    out = _shell(tensor)
    out.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = out.external_data.add()
        entry.key, entry.value = key, value
    return out


@contextlib.contextmanager
def spill_file(path: str | os.PathLike) -> Iterator[Spill]:
    """A Spill in a staging folder beside ``path`` (the output it is for: the same file
    system), removed with its folder on the way out, whatever happens; save the model that
    reads it inside the block."""
    path = Path(path)
    with staging_folder(path) as staging:
        spill = Spill(staging / "spill.bin")
        try:
            yield spill
        finally:
            spill.close()


def write_file(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` the way save_model writes a model (staged, fsynced, renamed)."""
    path = Path(path)
    with staging_folder(path) as staging:
        _write_synced(staging / path.name, data)
        os.replace(staging / path.name, path)
        _sync_folder(path.parent)


@contextlib.contextmanager
def staging_folder(path: Path) -> Iterator[Path]:
    """A fresh staging folder beside ``path`` (``.<name>.udc-staging-<pid>@<host>-<random>``),
    after removing the stale ones of the folder; removed on the way out, whatever happens
    (an OSError inside becomes an OutputError naming ``path``). Its name is chosen before
    it is made, so an exception at any point (SIGTERM in the CLI) still removes it."""
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {folder} does not exist")
    if path.is_dir():
        raise OutputError(f"{path}: is a directory")
    clean_stale_staging(folder)
    staging = folder / f".{path.name}{STAGING_TAG}{os.getpid()}@{_HOST}-{secrets.token_hex(4)}"
    try:
        _make_folder(staging)
        yield staging
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    finally:
        with _signals_held():
            shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _signals_held():
    """SIGTERM and SIGINT wait until the block ends (the removal of a staging folder is not
    cut short by the exception they raise in the CLI)."""
    held = {signal.SIGTERM, signal.SIGINT}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, OSError, ValueError):  # no pthread_sigmask on this platform
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _make_folder(path: Path) -> None:
    os.mkdir(path, 0o700)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the files themselves are synced
    finally:
        os.close(fd)


def _write_external(model: onnx.ModelProto, data_path: Path, location: str) -> onnx.ModelProto:
    """The large initializers of ``model`` written one by one into ``data_path``; returns a
    new model sharing nothing large with ``model``: the same graph with those initializers
    pointing into ``location``."""
    shell = onnx.ModelProto()
    _copy_fields(model, shell, skip="graph")
    graph = shell.graph
    _copy_fields(model.graph, graph, skip="initializer")
    adopted = _adoptable(model, data_path)
    if adopted is not None:  # an open Spill holding exactly the layout below: linked as the data file
        try:
            os.fsync(adopted._file.fileno())
            os.link(adopted.path, data_path)
        except OSError:  # a file system without hard links: copied below
            adopted = None
    if adopted is not None:
        adopted.sealed = True
        for tensor in model.graph.initializer:
            if is_deferred(tensor):
                graph.initializer.add().CopyFrom(external_reference(tensor, location))
                if tensor.HasField("doc_string"):
                    graph.initializer[-1].doc_string = tensor.doc_string
            else:
                graph.initializer.add().CopyFrom(tensor)
        return shell
    with open(data_path, "wb") as f:
        for tensor in model.graph.initializer:
            if tensor.data_location == onnx.TensorProto.EXTERNAL or _payload_bytes(tensor) < EXTERNAL_THRESHOLD:
                graph.initializer.add().CopyFrom(tensor)
                if is_deferred(tensor):
                    load_deferred_tensor(graph.initializer[-1])
                continue
            offset = f.tell()
            pad = -offset % EXTERNAL_ALIGN
            if pad:
                f.write(b"\0" * pad)
                offset += pad
            with contextlib.ExitStack() as stack:
                data = stack.enter_context(_mapped(tensor)) if is_deferred(tensor) else _raw(tensor)
                f.write(data)
                length = len(data)
            out = graph.initializer.add()
            out.name, out.data_type = tensor.name, tensor.data_type
            if tensor.HasField("doc_string"):
                out.doc_string = tensor.doc_string
            out.dims.extend(tensor.dims)
            out.data_location = onnx.TensorProto.EXTERNAL
            for key, val in (("location", location), ("offset", str(offset)), ("length", str(length))):
                entry = out.external_data.add()
                entry.key, entry.value = key, val
            del data
        f.flush()
        os.fsync(f.fileno())
    return shell


def _raw(tensor: onnx.TensorProto) -> bytes:
    """The bytes an in-memory tensor has in external data."""
    return tensor.raw_data if tensor.HasField("raw_data") else numpy_helper.to_array(tensor).tobytes()


def _adoptable(model: onnx.ModelProto, data_path: Path) -> "Spill | None":
    """The open Spill on ``data_path``'s file system that holds every tensor
    ``_write_external`` would write, at the offsets it would write them to (filled by
    Spill.put_tensor in initializer order), with nothing after the last; None otherwise."""
    found, end = None, 0
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL or _payload_bytes(tensor) < EXTERNAL_THRESHOLD:
            continue
        if not is_deferred(tensor):
            return None
        location, offset, length = _deferred_place(tensor)
        if found not in (None, location) or offset != end + (-end % EXTERNAL_ALIGN):
            return None
        found, end = location, offset + length
    if found is None:
        return None
    spill = _SPILLS.get(found) if found is not None else None
    if spill is None or spill.sealed or spill._end != end or not hasattr(os, "link"):
        return None
    try:
        same_device = os.stat(spill.path).st_dev == os.stat(data_path.parent).st_dev
    except OSError:
        return None
    return spill if same_device else None


def _copy_fields(src, dst, skip: str) -> None:
    """Every set field of message ``src`` copied into ``dst`` but the one named ``skip``."""
    for field, value in src.ListFields():
        if field.name == skip:
            continue
        if field.is_repeated:
            getattr(dst, field.name).extend(value)
        elif field.type == field.TYPE_MESSAGE:
            getattr(dst, field.name).CopyFrom(value)
        else:
            setattr(dst, field.name, value)


def _payload_bytes(tensor: onnx.TensorProto) -> int:
    if is_deferred(tensor):
        return _deferred_place(tensor)[2]
    if tensor.HasField("raw_data"):
        return len(tensor.raw_data)
    numel = int(np.prod(tensor.dims)) if tensor.dims else 1
    return numel * 8  # typed fields: an upper bound is enough to choose


def clean_stale_staging(folder: Path) -> None:
    """Remove the staging folders in ``folder`` that no running process can still be writing.

    Only names of the exact staging pattern are touched (any output name: a writer killed
    while writing another output of this folder is cleaned too), and only those made on
    this machine (the host in the name; folders without one count as local) whose pid is
    dead, or whose pid now belongs to a process started after the folder was last changed
    (the pid was reused). Folders of live writers, of other machines (a shared folder)
    and every other file are left alone."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        found = _STAGING_NAME.match(entry.name)
        if found is None or (found["host"] or _HOST) != _HOST or not entry.is_dir(follow_symlinks=False):
            continue
        pid = int(found["pid"])
        try:
            changed = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if _alive(pid) and not _started_after(pid, changed):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _started_after(pid: int, when: float) -> bool:
    """Whether process ``pid`` started after time ``when`` (seconds since the epoch, with a
    2 s margin); False where the start time cannot be read (not Linux)."""
    if pid == os.getpid():
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        start = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: starttime
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    return start > when + 2.0
