import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]


def _library_or_none():
    from onnx_udc import RuntimeLibraryError, library_path

    try:
        return library_path()
    except RuntimeLibraryError:
        return None


@pytest.fixture(scope="session")
def library():
    """Path of the built custom-op library; `make test` builds it, so a missing one fails."""
    path = _library_or_none()
    if path is None:
        if os.environ.get("ONNX_UDC_ALLOW_NO_LIBRARY"):
            pytest.skip("libonnx_udc.so not built (ONNX_UDC_ALLOW_NO_LIBRARY set)")
        pytest.fail("libonnx_udc.so not built: run `make runtime` (or `make test`)")
    return path


@pytest.fixture(scope="session")
def native(library):
    """A NativeDecoder on the built library (the `library` fixture's rule when it is missing)."""
    from onnx_udc.native import NativeDecoder

    return NativeDecoder(library)
