"""Typed errors of the onnx-udc library.

Library code raises these; only the CLI turns them into one-line messages and exit codes.
"""

from __future__ import annotations


class UdcError(Exception):
    """Base class of every error onnx-udc raises on purpose."""

    exit_code = 1


class FormatError(UdcError):
    """A blob violates FORMAT.md (truncated, bad magic, bad header field, bad payload)."""

    exit_code = 3

    def __init__(self, message: str, status: str = "BAD_HEADER"):
        super().__init__(message)
        self.status = status


class UnsupportedVersionError(FormatError):
    """A blob written by a newer (or unknown) format version."""

    def __init__(self, message: str):
        super().__init__(message, status="UNSUPPORTED_VERSION")


class ChecksumError(FormatError):
    """The CRC-32 stored in a blob does not match its bytes."""

    def __init__(self, message: str):
        super().__init__(message, status="CHECKSUM_MISMATCH")


class LimitError(FormatError):
    """A blob declares more elements or bytes than a decoder accepts."""

    def __init__(self, message: str):
        super().__init__(message, status="LIMIT_EXCEEDED")


class ModelError(UdcError):
    """The input is not a usable ONNX model (missing, unreadable, not ONNX, invalid)."""

    exit_code = 2


class OutputError(UdcError):
    """The output file cannot be written."""

    exit_code = 4


class RuntimeLibraryError(UdcError):
    """The native custom-op library is missing or cannot be loaded."""

    exit_code = 5


class DeviceError(UdcError):
    """The CUDA decoder cannot run: the library was built without CUDA, there is no driver
    or device (``status`` UNAVAILABLE), or a CUDA call failed (DEVICE_ERROR)."""

    exit_code = 5

    def __init__(self, message: str, status: str = "UNAVAILABLE"):
        super().__init__(message)
        self.status = status


class FidelityError(UdcError):
    """The compressed model misses its fidelity target on the held-out calibration samples
    (after trying harder): nothing is written unless the caller allows a miss."""

    exit_code = 6

    def __init__(self, message: str, verification=None):
        super().__init__(message)
        self.verification = verification


class ConfigError(UdcError, ValueError):
    """An option has an invalid value (the message lists the valid choices)."""

    exit_code = 2
