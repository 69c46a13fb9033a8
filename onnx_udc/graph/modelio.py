"""Loading and saving ONNX models with clear errors and atomic writes."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from ..errors import ModelError, OutputError

# Protobuf cannot serialize a message of 2 GiB or more; stay well below it.
PROTO_LIMIT = (1 << 31) - (64 << 20)


def load_model(path: str | os.PathLike, load_external_data: bool = True) -> onnx.ModelProto:
    """Read an ONNX model (and its external data), raising ModelError on any problem."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file")
    if path.is_dir():
        raise ModelError(f"{path}: is a directory, not an ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=load_external_data)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise ModelError(f"{path}: not a valid ONNX model ({type(exc).__name__})") from None
    except FileNotFoundError as exc:
        raise ModelError(f"{path}: external data file missing: {exc.filename}") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not model.HasField("graph") or model.ir_version == 0:
        raise ModelError(f"{path}: not a valid ONNX model (no graph or IR version)")
    return model


def save_model(model: onnx.ModelProto, path: str | os.PathLike) -> None:
    """Write atomically: files in a temporary folder beside the target, renamed into place.

    Models too large for one protobuf keep their big tensors in ``<name>.data``.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {folder} does not exist")
    if path.is_dir():
        raise OutputError(f"{path}: is a directory")
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=folder))
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    data_name = path.name + ".data"
    try:
        if model.ByteSize() > PROTO_LIMIT:
            onnx.save_model(
                _copy(model), str(staging / path.name), save_as_external_data=True,
                all_tensors_to_one_file=True, location=data_name, size_threshold=1024,
            )
            os.replace(staging / data_name, folder / data_name)
        else:
            (staging / path.name).write_bytes(model.SerializeToString())
        os.replace(staging / path.name, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out
