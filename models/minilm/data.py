"""Evaluation inputs: first sentences of Python standard-library docstrings, tokenized.

Deterministic and offline: a fixed list of stdlib modules is walked with ``inspect``
(module, public classes and functions, and the methods of those classes); the first
sentence of every docstring is kept if it looks like prose of 5..60 words. Sentences
are deduplicated and sorted, then ``TARGET`` of them are picked at evenly spaced
positions of the sorted list (so no alphabet range dominates).

Cached in ``models/cache/minilm/``: ``inputs.npz`` (token ids and masks per batch of
``BATCH`` sentences, each batch padded to its own longest sentence) and ``sentences.txt``.
"""

from __future__ import annotations

import importlib
import inspect
import re
import warnings
from pathlib import Path

import numpy as np

TARGET = 1200
BATCH = 32
MAX_LENGTH = 128
MIN_WORDS, MAX_WORDS = 5, 60

MODULES = (
    "abc", "argparse", "array", "ast", "asyncio", "base64", "binascii", "bisect", "bz2", "calendar",
    "cmath", "codecs", "collections", "colorsys", "concurrent.futures", "configparser", "contextlib",
    "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "doctest", "email.message",
    "email.utils", "enum", "filecmp", "fileinput", "fnmatch", "fractions", "ftplib", "functools", "gc",
    "getopt", "gettext", "glob", "graphlib", "gzip", "hashlib", "heapq", "hmac", "html", "html.parser",
    "http.client", "http.cookies", "http.server", "imaplib", "importlib", "inspect", "io", "ipaddress",
    "itertools", "json", "linecache", "locale", "logging", "logging.handlers", "lzma", "mailbox",
    "math", "mimetypes", "multiprocessing", "numbers", "operator", "optparse", "os", "os.path",
    "pathlib", "pdb", "pickle", "pickletools", "platform", "plistlib", "poplib", "pprint", "pstats",
    "queue", "quopri", "random", "re", "reprlib", "sched", "secrets", "selectors", "shelve", "shlex",
    "shutil", "signal", "smtplib", "socket", "socketserver", "sqlite3", "ssl", "stat", "statistics",
    "string", "struct", "subprocess", "sys", "sysconfig", "tarfile", "tempfile", "textwrap",
    "threading", "time", "timeit", "tokenize", "tomllib", "trace", "traceback", "types", "typing",
    "unittest", "urllib.parse", "urllib.request", "uuid", "warnings", "wave", "weakref",
    "xml.dom.minidom", "xml.etree.ElementTree", "xmlrpc.client", "zipfile", "zlib", "zoneinfo",
)


def _first_sentence(doc: str | None) -> str | None:
    if not doc:
        return None
    paragraphs = [p for p in re.split(r"\n\s*\n", doc.strip()) if p.strip()]
    for para in paragraphs[:2]:  # skip one leading signature line such as "f(x) -> y"
        text = " ".join(para.split())
        if re.match(r"^[\w.]+\(.*\)(\s*->.*)?$", text) or "->" in text.split(".")[0]:
            continue
        match = re.match(r"^(.+?[.!?])(\s|$)", text)
        sentence = match.group(1) if match else text
        return sentence
    return None


def _is_prose(s: str) -> bool:
    words = s.split()
    return (
        MIN_WORDS <= len(words) <= MAX_WORDS
        and s[0].isupper()
        and s.endswith(".")
        and s.isascii()
        and ">>>" not in s
        and not re.search(r"[{}\[\]=]|::|\bTODO\b|\bXXX\b", s)
    )


def _docstrings(module) -> list[str]:
    docs = [inspect.getdoc(module)]
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_"):
            continue
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        docs.append(inspect.getdoc(obj))
        if inspect.isclass(obj):
            for attr, member in sorted(vars(obj).items()):
                if attr.startswith("_") or not (inspect.isroutine(member) or isinstance(member, property)):
                    continue
                docs.append(inspect.getdoc(member))
    return [d for d in docs if d]


def collect_sentences(target: int = TARGET) -> list[str]:
    found: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for modname in MODULES:
            try:
                module = importlib.import_module(modname)
            except ImportError:  # e.g. a Python built without ssl or sqlite3
                continue
            for doc in _docstrings(module):
                sentence = _first_sentence(doc)
                if sentence and _is_prose(sentence):
                    found.add(sentence)
    ordered = sorted(found)
    if len(ordered) > target:
        picks = np.linspace(0, len(ordered) - 1, target).round().astype(int)
        ordered = [ordered[i] for i in picks]
    return ordered


def build_inputs(tokenizer, cache_dir: Path) -> Path:
    """Tokenize the sentences into padded batches; write inputs.npz and sentences.txt."""
    sentences = collect_sentences()
    arrays: dict[str, np.ndarray] = {}
    for b, start in enumerate(range(0, len(sentences), BATCH)):
        enc = tokenizer(
            sentences[start : start + BATCH], padding="longest", truncation=True,
            max_length=MAX_LENGTH, return_tensors="np",
        )
        arrays[f"input_ids_{b:03d}"] = enc["input_ids"].astype(np.int64)
        arrays[f"attention_mask_{b:03d}"] = enc["attention_mask"].astype(np.int64)
    (cache_dir / "sentences.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    path = cache_dir / "inputs.npz"
    tmp = cache_dir / "inputs.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path


def load_batches(path: Path) -> list[dict[str, np.ndarray]]:
    with np.load(path) as data:
        n = sum(1 for k in data.files if k.startswith("input_ids_"))
        return [
            {"input_ids": data[f"input_ids_{b:03d}"], "attention_mask": data[f"attention_mask_{b:03d}"]}
            for b in range(n)
        ]
