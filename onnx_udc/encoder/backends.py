"""Where the per-tensor encode jobs of one model run: a registry of small executors.

    EncodeJob(name, array, plan, coder)  --run_job-->  JobResult(sqnr_db, EncodeResult)
    backend.run([job thunks], workers)  -> JobResults, in the order of the jobs

    threads    (default) a thread pool in this process; each worker reads its own tensor
               (through the memory map of a deferred tensor: modelio.tensor_array)
    processes  a pool of local processes (spawned); the jobs' arrays are pickled to them
    ray        tasks on a Ray cluster (``pip install onnx-udc[ray]``): ``address`` as
               ray.init takes it, or None for the instance already initialised in this
               process (else a local one, started and shut down here)

A job carries only what a worker needs (the tensor's values, its TensorPlan, the coder
name); a result only the blob, its header and the report's numbers. Each tensor is
encoded from its own seed and results are consumed in job order, so the bytes are the
same for every backend and worker count. The backends that ship arrays elsewhere keep at
most ``2 x workers`` jobs in flight: the driver never holds more tensors than that.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..codec import EncodeResult, Quantized, dequantize, pack, quantize, quantized_sqnr, sqnr_db
from ..errors import ConfigError, UdcError

RAY_HINT = "pip install onnx-udc[ray]"


@dataclass(frozen=True)
class EncodeJob:
    """One tensor to encode: what a worker anywhere needs, nothing else."""

    name: str
    array: np.ndarray  # [*shape] the tensor's values
    plan: object  # config.TensorPlan (not imported: config imports this module)
    coder: str


@dataclass(frozen=True)
class JobResult:
    sqnr_db: float  # inf when lossless
    result: EncodeResult  # the blob, its header, the symbols' entropy


def encode_array(name: str, array: np.ndarray, plan, *, keep_decoded: bool = False,
                 quantized: Quantized | None = None, decoded: np.ndarray | None = None
                 ) -> tuple[Quantized, float, np.ndarray | None]:
    """(Quantized, SQNR of its exact decode, the decode when ``keep_decoded``) of one tensor;
    ``quantized`` (and ``decoded``, its exact decode) when a stage already has them. Errors
    name the tensor."""
    try:
        quantized = quantized if quantized is not None else quantize(array, plan.quantizer, plan.config, plan.seed)
        if plan.exact:
            return quantized, math.inf, (array if keep_decoded else None)
        if decoded is None and not keep_decoded:  # the SQNR only: decoded a piece at a time
            return quantized, quantized_sqnr(array, quantized), None
        decoded = dequantize(quantized) if decoded is None else decoded
        return quantized, sqnr_db(array, decoded), (decoded if keep_decoded else None)
    except UdcError as exc:
        raise type(exc)(f"{name}: {exc}") from None


def pack_named(name: str, quantized: Quantized, coder: str) -> EncodeResult:
    try:
        return pack(quantized, coder)
    except UdcError as exc:
        raise type(exc)(f"{name}: {exc}") from None


def run_job(job: EncodeJob) -> JobResult | UdcError:
    """Quantize and entropy-code one tensor. A typed error is returned, not raised (it
    crosses process and cluster boundaries as a value and is raised by the driver)."""
    try:
        quantized, sqnr, _ = encode_array(job.name, job.array, job.plan)
        return JobResult(sqnr, pack_named(job.name, quantized, job.coder))
    except UdcError as exc:
        return exc


class Backend:
    """Runs job thunks (each makes its EncodeJob when called), yields results in order."""

    name = ""

    def __init__(self, address: str | None = None):
        self.address = address

    @classmethod
    def check(cls, address: str | None) -> None:
        """ConfigError when this backend cannot run here (a missing package) or takes no address."""
        if address is not None:
            raise ConfigError(f"backend {cls.name} takes no address (only ray does)")

    def run(self, jobs: Iterable[Callable[[], EncodeJob]], workers: int | None) -> Iterator[JobResult]:
        raise NotImplementedError


_BACKENDS: dict[str, type[Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    if cls.name in _BACKENDS:
        raise RuntimeError(f"backend {cls.name} registered twice")
    _BACKENDS[cls.name] = cls
    return cls


def names() -> list[str]:
    return list(_BACKENDS)


def by_name(name: str) -> type[Backend]:
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}; choose one of {names()}") from None


def check(name: str, address: str | None = None) -> None:
    """ConfigError (one line) unless backend ``name`` can run with ``address``."""
    by_name(name).check(address)


def make(name: str, address: str | None = None) -> Backend:
    cls = by_name(name)
    cls.check(address)
    return cls(address)


def _value(item: JobResult | UdcError) -> JobResult:
    if isinstance(item, UdcError):
        raise item
    return item


def _in_order(submit: Callable[[EncodeJob], object], collect: Callable[[object], JobResult | UdcError],
              jobs: Iterable[Callable[[], EncodeJob]], window: int) -> Iterator[JobResult]:
    """Submit the jobs (made here, one at a time) with at most ``window`` in flight; results
    in job order."""
    pending: deque = deque()
    for make_job in jobs:
        if len(pending) >= window:
            yield _value(collect(pending.popleft()))
        pending.append(submit(make_job()))
    while pending:
        yield _value(collect(pending.popleft()))


def _workers(workers: int | None) -> int:
    return max(1, workers or os.cpu_count() or 1)


@register
class ThreadBackend(Backend):
    name = "threads"

    def run(self, jobs, workers):
        pool = ThreadPoolExecutor(max_workers=_workers(workers))
        try:
            for item in pool.map(lambda make_job: run_job(make_job()), jobs):
                yield _value(item)
        finally:  # an error or an interrupt: the jobs not started yet are dropped
            pool.shutdown(wait=True, cancel_futures=True)


@register
class ProcessBackend(Backend):
    name = "processes"

    def run(self, jobs, workers):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        count = _workers(workers)
        # spawn: a fork of a process with threads (onnxruntime's, the pool's) is not safe
        with ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context("spawn")) as pool:
            try:
                yield from _in_order(lambda job: pool.submit(run_job, job), lambda fut: fut.result(), jobs, 2 * count)
            except BrokenProcessPool as exc:
                raise UdcError(f"an encoder process died ({exc}); out of memory? try fewer --threads") from None


@register
class RayBackend(Backend):
    name = "ray"

    @classmethod
    def check(cls, address):
        if importlib.util.find_spec("ray") is None:
            raise ConfigError(f"the ray backend needs Ray, which is not installed: {RAY_HINT}")

    def run(self, jobs, workers):
        ray = importlib.import_module("ray")  # the optional extra, imported only here
        started = not ray.is_initialized()
        if started:
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         logging_level="warning", configure_logging=True)
            except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError of ray.init
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
                raise ConfigError(f"cannot start or reach {where}: {_first_line(exc)}") from None
        try:
            count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            remote = ray.remote(num_cpus=1)(run_job)

            def collect(ref):
                try:
                    return ray.get(ref)
                except ray.exceptions.RayError as exc:
                    raise UdcError(f"a Ray encode task failed: {_first_line(exc)}") from None

            yield from _in_order(remote.remote, collect, jobs, 2 * count)
        finally:
            if started:
                ray.shutdown()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
