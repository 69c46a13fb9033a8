"""Running compressed models: the fast loader, the portable path, and verification.

    InferenceSession(path)     onnxruntime session; blobs decoded once by the C++ core (fast)
                               or by the registered custom op (fast=False, portable)
    session_options()          session options with the custom-op library registered
    verify.compare_sessions    outputs of two sessions on the same feeds
"""

from .session import InferenceSession, prepare_fast, session_options

__all__ = ["InferenceSession", "prepare_fast", "session_options"]
