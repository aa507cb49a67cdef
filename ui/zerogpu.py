"""Hugging Face ZeroGPU Spaces: a GPU is lent per call, inside functions decorated with `@spaces.GPU(duration=...)`,
for at most a few minutes. Short GPU work (a chat answer, an evaluation batch) fits; a training run does not, so on
ZeroGPU the app refuses to start one and says why, instead of starting a job that would be cut off.

What the `spaces` package does, read in its source (spaces 0.51.3 from PyPI, the wheel's spaces/config.py,
spaces/zero/__init__.py, zero/decorator.py, zero/wrappers.py, zero/client.py, zero/torch/patching.py):

- On or off: `spaces.config.Config.zero_gpu` is read once, at import, from SPACES_ZERO_GPU ("1", "t" or "true",
  any case); on, SPACES_ZERO_DEVICE_API_URL must be set too (HF's device API). Off, `spaces.GPU(...)` returns the
  function itself (decorator.py `_GPU`), so the same code runs unchanged on a CPU Space or a GPU of one's own.
- Where the function runs: not in the calling process. Each call asks the device API for a GPU (`client.schedule`,
  which may queue, or refuse with a quota message as a `gr.Error`), then hands `(args, kwargs)` to a worker process
  made with `multiprocessing`'s *fork* context (wrappers.py `Worker`); a worker whose GPU stayed idle is kept for the
  next call, else a new one is forked. So arguments and results (each yielded value too) are pickled through a pipe,
  while everything else the function uses (module globals, a loaded model) is the worker's copy from the moment it
  was forked: changes a call makes there never come back, and objects the app creates after that fork are not there.
- Errors: an exception in the worker comes back only as its class name ("ZeroGPU worker error") unless it is a
  `gr.Error`, so our functions return a failure as a value and it is raised again here with its message.
- Generators are supported (`generator_function_wrapper`): each yielded value is pickled back as it comes; closing
  the generator on this side sets the worker's stop event, and the worker closes the task's generator after its next
  value. That is how Stop reaches a streamed chat answer.
- `duration`: seconds, a `timedelta`, or a callable given the call's arguments; the lease is scaled by the GPU's
  `duration_factor` and a warning is shown past it. Async functions are refused (NotImplementedError).
- Called from a thread: the user's quota is read from the gradio request in a context variable
  (`gradio.context.LocalContext.request`); a thread without that context (an evaluation job, a remote pane's helper
  thread) is charged to the Space itself. We run chat calls in a copy of the request's context for this reason.
- CUDA: with ZeroGPU on, importing `spaces` patches torch in the main process (`torch.cuda.is_available()` is
  True, tensors moved to "cuda" stay on the CPU as aliases) and each worker moves them to its GPU. The emulation is
  entered in the importing thread only, so a model must be put on "cuda" in the main thread (app.py does so on
  ZeroGPU) or loaded inside the GPU call.
- `import spaces` alone does not import gradio; with ZeroGPU on its worker machinery does (wrappers.py, client.py).
  So `spaces` is used here, in ui/, and jobs/ and evaluation/ get a plain callable (`eval_batch_call`).

What follows for this app: a chat answer (all in-process panes of one request, side by side or blind) is one GPU
call streaming StreamStates; an evaluation or prediction batch of an in-process model is one GPU call returning its
rows; remote models never take one; the model is found in the worker from plain data (a registered directory key, or
(base, data_dir, adapter)), never pickled. Known limits, from the above: adapters attached in a worker are not seen as
loaded by the app process (its model table shows the base only), the admin's Load / Unload acts on the app process's
copy, and sampled (temperature > 0) evaluation answers draw from the worker's random state, not one sequence
continued from the run's seed as without ZeroGPU (greedy answers, the default, are the same).

Untested on a real Space (none is reachable from here). tests/test_zerogpu.py runs the real package's decorator and
worker processes with only HF's device API (schedule/allow/release) and the torch device moves replaced.
"""

from __future__ import annotations

import contextvars
import importlib.util
import math
import os
import pickle
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import gradio as gr

from ui.strings import t

# A chat answer's GPU lease, sized to the answer asked for (a shorter lease waits less in ZeroGPU's line): moving the
# model and the first token, then max_new_tokens at 20 tokens/s (DESIGN.md measured 22 through peft with a LoRA at
# batch 1 on an H100; the panes side by side decode in one batch), at most CHAT_MAX_SECONDS.
CHAT_START_SECONDS = 15
CHAT_TOKENS_PER_S = 20
CHAT_MAX_SECONDS = 120
EVAL_SECONDS = 120  # one evaluation batch (`batch_size` rows generated or scored), model load included


def chat_seconds(key: str, panes: list, settings) -> int:
    """The lease of one chat answer (spaces calls it with the GPU function's own arguments)."""
    return min(CHAT_MAX_SECONDS, CHAT_START_SECONDS + math.ceil(settings.max_new_tokens / CHAT_TOKENS_PER_S))


def zerogpu_active() -> bool:
    """ZeroGPU is on: parsed as the `spaces` package parses SPACES_ZERO_GPU (spaces/config.py `boolean`), so the
    app never believes in a GPU lease that the decorator would not take."""
    on = os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true")
    return on and importlib.util.find_spec("spaces") is not None


def gpu(duration: int):
    """`@spaces.GPU(duration=...)` on ZeroGPU, else the function unchanged."""

    def wrap(fn):
        if not zerogpu_active():
            return fn
        import spaces

        return spaces.GPU(duration=duration)(fn)

    return wrap


def refuse_training(lang: str) -> None:
    """Raises the page's message on ZeroGPU (training needs a GPU for longer than one ZeroGPU call allows)."""
    if zerogpu_active():
        raise gr.Error(t("space.zerogpu_no_training", lang), print_exception=False)


# ---------------------------------------------------------------------------------------------------------------
# What crosses the pipe to and from a worker: plain data, and failures as values


@dataclass
class _Failure:
    """An exception raised in the worker, carried back whole (spaces would pass on only its class name)."""

    error: Exception
    cause: str | None  # the text of its __cause__, which pickling drops: ui/errors.py treats such errors as unexpected

    @staticmethod
    def of(exc: Exception) -> "_Failure":
        from models.local.catalog import RegistryError

        cause = exc.__cause__
        cause_text = None if cause is None else f"{type(cause).__name__}: {cause}"
        try:
            pickle.loads(pickle.dumps(exc))  # both ways: an __init__ with other arguments than `args` fails to load
        except Exception:  # noqa: BLE001 - one pickle cannot rebuild becomes a RegistryError, shown as unexpected
            return _Failure(RegistryError(f"{type(exc).__name__}: {exc}"), cause_text or f"{type(exc).__name__}")
        return _Failure(exc, cause_text)

    def raise_here(self):
        if self.cause is not None:
            raise self.error from RuntimeError(self.cause)
        raise self.error


@dataclass
class _Step:
    state: object | None  # models.local.streaming.StreamState
    unloaded: list = field(default_factory=list)  # Unload events in the worker while this state was made
    failure: _Failure | None = None


# ---------------------------------------------------------------------------------------------------------------
# Chat: one GPU call per answer, streamed


_DIRECTORIES: dict[str, object] = {}  # filled at app build time, so that every forked worker has them


def register_directory(directory) -> str:
    """Makes the chat tab's model directory findable in a worker by a key (a directory itself cannot be pickled)."""
    key = str(id(directory))
    _DIRECTORIES[key] = directory
    return key


def _chat_on_gpu(key: str, panes: list, settings):
    """Runs in the ZeroGPU worker: the in-process panes answered by the registry's own batched stream."""
    unloaded: list = []
    try:
        registry = _DIRECTORIES[key].registry
        for state in registry.stream(panes, settings, on_unload=unloaded.append):
            yield _Step(state, list(unloaded))
            unloaded.clear()
    except Exception as exc:  # noqa: BLE001 - handed back as a value, raised again in the app process
        yield _Step(None, list(unloaded), _Failure.of(exc))


_decorated: dict[str, Callable] = {}


def _on_gpu(fn: Callable, duration: int | Callable[..., int]) -> Callable:
    if fn.__name__ not in _decorated:  # spaces keeps one worker pool per decorated function: decorate once
        import spaces

        _decorated[fn.__name__] = spaces.GPU(duration=duration)(fn)
    return _decorated[fn.__name__]


class _GpuRegistry:
    """The registry as stream_panes sees it, its `stream` answering in one GPU call; the rest is the registry's."""

    def __init__(self, registry, key: str, context: contextvars.Context):
        self._registry, self._key, self._context = registry, key, context

    def __getattr__(self, name):
        return getattr(self._registry, name)

    def stream(self, panes, settings, stop: threading.Event | None = None, on_unload=None):
        from models.local.catalog import RegistryError

        stop = stop or threading.Event()
        # Created and advanced in the request's context: spaces reads the user's quota token from it, also when
        # stream_panes calls this from its helper thread (a mix of in-process and remote panes).
        steps = self._context.run(_on_gpu(_chat_on_gpu, chat_seconds), self._key, list(panes), settings)
        try:
            while True:
                try:
                    step = self._context.run(next, steps)
                except StopIteration:
                    return
                except gr.Error as exc:  # spaces' refusals (quota spent, no GPU free, the worker died): a model
                    # error like any other, so that a pane beside remote ones says why (chat/panes.py catches those)
                    raise RegistryError(str(getattr(exc, "message", exc))) from None
                for event in step.unloaded:
                    if on_unload is not None:
                        on_unload(event)
                if step.failure is not None:
                    step.failure.raise_here()
                state = step.state
                if stop.is_set():  # Stop: closing the call below stops the worker's generation after this state
                    state.finished = state.stopped = True
                    yield state
                    return
                yield state
        finally:
            stop.set()  # as the registry's own stream does when its batch ends (chat/panes.py relies on it)
            self._context.run(steps.close)


class GpuDirectory:
    """A model directory whose in-process models answer inside one `@spaces.GPU` call per answer; remote models
    (and everything else) are the directory's own, so an endpoint never takes a GPU slot."""

    def __init__(self, directory, key: str):
        self._directory = directory
        self.registry = _GpuRegistry(directory.registry, key, contextvars.copy_context())

    def __getattr__(self, name):
        return getattr(self._directory, name)


def chat_directory(directory, key: str | None):
    """What the chat tab streams from: on ZeroGPU the GPU-call directory (made per request, in its context), else
    the directory itself, untouched."""
    if key is None or not zerogpu_active():
        return directory
    return GpuDirectory(directory, key)


# ---------------------------------------------------------------------------------------------------------------
# Evaluation: one GPU call per batch, in the job's thread of the app process


def _batch_on_gpu(work: Callable, ref: tuple[str, str | None, str | None], args: tuple):
    """Runs in the ZeroGPU worker: the in-process model found again from plain data, then one batch of `work`."""
    from models.local.model import InProcessModel
    from models.local.registry import shared_registry

    try:
        base, data_dir, adapter = ref
        return work(InProcessModel(shared_registry(base, data_dir), adapter), *args)
    except Exception as exc:  # noqa: BLE001 - handed back as a value, raised again in the job's thread
        return _Failure.of(exc)


def eval_batch_call(model, work: Callable, *args):
    """The `batch_call` of evaluation.run.evaluate / evaluation.predict.predict on ZeroGPU: an in-process model's
    batch (`work(model, *args)`, a module-level function of plain arguments) runs in one GPU call of EVAL_SECONDS;
    a remote model's batch runs here, as without ZeroGPU."""
    from models.interface import IN_PROCESS

    if model.where != IN_PROCESS:
        return work(model, *args)
    adapters_dir = model.registry.adapters_dir  # <data_dir>/adapters: the registry's key is (base, data_dir)
    ref = (model.registry.base_name, None if adapters_dir is None else str(Path(adapters_dir).parent), model.adapter)
    result = _on_gpu(_batch_on_gpu, EVAL_SECONDS)(work, ref, args)
    if isinstance(result, _Failure):
        result.raise_here()
    return result


# ---------------------------------------------------------------------------------------------------------------
# Start-up


def start_zerogpu(model: str, data_dir: Path | str) -> bool:
    """On ZeroGPU, in the main thread before serving: what `spaces` does at `gr.Blocks.launch()`, which this app never
    calls (it serves through uvicorn, app.py). Returns whether ZeroGPU is on.

    The GPU functions are decorated first: spaces' start-up reports to the device API only when some are
    (spaces/zero/__init__.py `startup`). The base model (the chat tab's registry's) loads next, in this thread, where
    spaces' CUDA emulation is entered: the model goes to "cuda" as CPU aliases, which start-up packs and each worker
    moves to its GPU, instead of every new worker loading the model from disk inside its timed call.
    """
    if not zerogpu_active():
        return False
    import spaces.zero
    from spaces.zero.gradio import _orig_launch

    from models.local.registry import shared_registry

    _on_gpu(_chat_on_gpu, chat_seconds)
    _on_gpu(_batch_on_gpu, EVAL_SECONDS)
    try:
        shared_registry(model, data_dir).host.ensure_base()
    except Exception as exc:  # noqa: BLE001 - the app still works: each worker then loads the model itself
        print(f"ZeroGPU: the base model could not be put on the GPU ahead of time ({type(exc).__name__}: {exc});"
              " each GPU worker loads it on its first call instead", flush=True)
    gr.Blocks.launch = _orig_launch  # spaces' one-time start-up hook, run here instead
    spaces.zero.startup()
    return True
