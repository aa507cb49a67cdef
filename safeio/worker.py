"""Run a parsing function in a separate, memory-limited process, so that a hostile upload ends that request with a
message instead of taking the server down.

    result = run_limited(func, *args, memory_mb=2048, timeout_s=120, **kwargs)

`func` must be importable by name (a module-level function); its arguments, result and exceptions cross a pipe by
pickle. Workers are plain `python -c` children (not multiprocessing's spawn, which would re-import the app's
__main__ and with it gradio); they stay warm between calls, because a cold start that imports transformers costs
seconds. Each call gets its own address-space limit (RLIMIT_AS) on top of what the worker already maps, so
imports do not eat the budget; the limit is lifted after the call. A call past its time, or a worker that dies
(memory), is replaced by a fresh worker on the next call. The parent's safeio limits travel with each call.
"""

from __future__ import annotations

import importlib
import os
import pickle
import queue
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection

from safeio.limits import current, set_current

DEFAULT_MEMORY_MB = int(os.environ.get("MEDTUNE_WORKER_MEMORY_MB", "4096"))
DEFAULT_TIMEOUT_S = float(os.environ.get("MEDTUNE_WORKER_TIMEOUT_S", "300"))
POOL_SIZE = int(os.environ.get("MEDTUNE_WORKERS", "2"))
MAX_CALLS = 100  # a worker is replaced after this many calls: what Python keeps of freed memory cannot creep
WORKER_NICENESS = int(os.environ.get("MEDTUNE_WORKER_NICE", "10"))  # added to the app's niceness: below chat


class WorkerError(RuntimeError):
    """The call did not finish: `kind` is "memory" (over its limit, or killed), "timeout" or "crashed"."""

    def __init__(self, kind: str, message: str, **params):
        super().__init__(message)
        self.kind, self.params = kind, params  # the figures, for the page's own sentence (ui/errors.worker_error)

    def __reduce__(self):
        return _worker_error, (self.kind, str(self), self.params)


def _worker_error(kind, message, params):
    return WorkerError(kind, message, **params)


class _Worker:
    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.conn: Connection | None = None
        self.calls = 0

    def start(self) -> None:
        parent, child = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
               # one thread: tokenizers' and torch's thread pools would multiply the address space per call
               "TOKENIZERS_PARALLELISM": "false", "RAYON_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        code = f"from safeio.worker import serve; serve({child.fileno()})"
        self.proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=[child.fileno()], env=env,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        child.close()
        self.conn = Connection(parent.detach())
        self.calls = 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None

    def call(self, func, args, kwargs, memory_mb: int, timeout_s: float, preload: tuple[str, ...] = ()):
        if self.proc is None or self.proc.poll() is not None or self.calls >= MAX_CALLS:
            self.stop()
            self.start()
        self.calls += 1
        try:
            self.conn.send((func, args, kwargs, memory_mb, current(), preload))
            if not self.conn.poll(timeout_s):
                self.stop()
                raise WorkerError("timeout", f"stopped after {timeout_s:g} s", seconds=f"{timeout_s:g}")
            status, value = self.conn.recv()
        except (EOFError, OSError):
            try:  # the pipe closed: the worker died (killed for memory, or aborted in C code)
                code = self.proc.wait(timeout=5) if self.proc is not None else None
            except subprocess.TimeoutExpired:
                code = None
            self.stop()
            raise WorkerError("memory", f"the worker process ended (exit status {code}); most likely it ran out "
                                        f"of its {memory_mb} MB", memory_mb=memory_mb, ended=True) from None
        if status == "ok":
            return value
        if status == "memory":
            self.stop()  # after a MemoryError the worker's heap may be fragmented or half-updated: start afresh
            raise WorkerError("memory", f"ran out of its {memory_mb} MB", memory_mb=memory_mb)
        raise value


_pool: queue.Queue | None = None
_pool_lock = threading.Lock()


def _workers() -> queue.Queue:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = queue.LifoQueue()  # the last used worker first: it has the modules and tokenizers loaded
            for _ in range(max(1, POOL_SIZE)):
                _pool.put(_Worker())
    return _pool


def run_limited(func, *args, memory_mb: int | None = None, timeout_s: float | None = None,
                preload: tuple[str, ...] = (), **kwargs):
    """func(*args, **kwargs) in a warm worker process with at most memory_mb more address space and timeout_s
    seconds. Its exceptions are raised here; WorkerError when it ran out of memory or time. `preload` names
    modules imported before the limit is set (torch maps over a GB of libraries: not the upload's doing)."""
    pool = _workers()
    worker = pool.get()  # waits while every worker is busy: parsing uploads is bounded to POOL_SIZE at once
    try:
        return worker.call(func, args, kwargs, memory_mb or DEFAULT_MEMORY_MB, timeout_s or DEFAULT_TIMEOUT_S,
                           tuple(preload))
    finally:
        pool.put(worker)


def shutdown() -> None:
    """Stop the warm workers (tests; the app's workers end with it: they read EOF when it exits)."""
    pool = _workers()
    for _ in range(pool.qsize()):
        worker = pool.get()
        worker.stop()
        pool.put(worker)


# ---------------------------------------------------------------------------------------------------------------
# The worker side


def _mapped_bytes() -> int:
    """This process's address space now (Linux); 0 elsewhere, where the limit is then absolute."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def serve(fd: int) -> None:
    import resource

    conn = Connection(fd)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    # Parsing and scoring uploads is batch work: at a lower priority it takes the CPU only when chat and the app's
    # own requests leave it idle (on a 2-core server 20 chat sessions slowed 2.8x at equal priority).
    try:
        os.nice(WORKER_NICENESS)
    except OSError:
        pass  # not allowed here: the worker still runs, at the app's priority
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent went away
        try:
            func, args, kwargs, memory_mb, limits, preload = pickle.loads(message)  # imports func's module
            for module in preload:
                importlib.import_module(module)  # before the limit: imports are not the upload's memory
        except Exception as exc:  # noqa: BLE001 - e.g. a function that is not importable by name
            conn.send(("error", RuntimeError(f"the worker cannot take this call ({type(exc).__name__}: {exc})")))
            continue
        set_current(limits)
        soft = _mapped_bytes() + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))
        started = time.monotonic()
        try:
            reply = ("ok", func(*args, **kwargs))
        except MemoryError:
            reply = ("memory", None)
        except Exception as exc:  # noqa: BLE001 - every error goes back to the caller, who decides
            reply = ("error", exc)
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        conn.send(_sendable(reply, time.monotonic() - started))
        if reply[0] == "memory":
            return


def _sendable(reply: tuple, elapsed: float) -> tuple:
    """An exception or result that does not survive pickling (a class with a custom __init__) is sent as text."""
    try:
        pickle.loads(pickle.dumps(reply))
        return reply
    except Exception as exc:  # noqa: BLE001
        value = reply[1]
        what = f"{type(value).__name__}: {value}" if reply[0] == "error" else f"an unpicklable result ({exc})"
        return "error", RuntimeError(f"{what} (after {elapsed:.1f} s in the worker)")


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB; run_limited(peak_rss_mb) asks a worker. Linux's VmHWM, which starts
    afresh at exec: ru_maxrss survives exec, so a worker started by a large parent would report the parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: KB on Linux, bytes on macOS
