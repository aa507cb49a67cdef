"""Side-by-side panes from any mix of models: in-process ones in one batch, each remote one over its own stream.

In-process panes go to the registry together (one batched generation, as before); each remote pane streams from
its endpoint in its own thread. Every update carries all panes' text so far. A remote pane that fails (server down,
timeout, 401, unknown model, 429 after retries, a malformed stream) gets its reason in `errors[i]` and stops; the
other panes go on. With only in-process panes this is the registry's own stream, unchanged.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterator, Sequence

from models.interface import IN_PROCESS, ModelError
from models.local.streaming import StreamState
from models.settings import GenerationSettings

_DONE = object()


def stream_panes(directory, panes: Sequence[tuple[str | None, list]], settings: GenerationSettings,
                 stop: threading.Event | None = None, on_unload: Callable | None = None) -> Iterator[StreamState]:
    """Yield every pane's answer so far until all are done. `directory`: models.directory.ModelDirectory."""
    local = [i for i, (m, _) in enumerate(panes) if directory.where(m) == IN_PROCESS] if panes else []
    if len(local) == len(panes):
        yield from directory.registry.stream(panes, settings, stop=stop, on_unload=on_unload)
        return
    stop = stop or threading.Event()
    # The registry sets the event it is given when its batch ends: the in-process panes get their own, which the
    # user's stop is passed on to, so that finishing them first does not stop the remote panes.
    local_stop = threading.Event()
    n = len(panes)
    state = StreamState([""] * n, [0] * n, [False] * n, errors=[None] * n)
    events: queue.Queue = queue.Queue()
    threads = [threading.Thread(target=_remote_pane, args=(directory, i, panes[i], settings, stop, events),
                                name=f"remote-pane-{i}", daemon=True) for i in range(n) if i not in local]
    if local:
        threads.append(threading.Thread(target=_local_panes, daemon=True, name="local-panes",
                                        args=(directory.registry, local, panes, settings, local_stop, on_unload,
                                              events)))
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            try:
                item = events.get(timeout=0.25)
            except queue.Empty:  # nothing new: pass a Stop on to the in-process panes, which may be waiting in line
                if stop.is_set():
                    local_stop.set()
                continue
            if item is _DONE:
                running -= 1
            else:
                item(state)
            state.elapsed_s = time.perf_counter() - state.started
            if state.first_token_s is None and any(state.tokens):
                state.first_token_s = state.elapsed_s
            state.finished = running == 0
            state.stopped = stop.is_set()
            if state.stopped:
                local_stop.set()
            yield state
    finally:
        stop.set()
        local_stop.set()
        for thread in threads:
            thread.join(timeout=5)  # a remote read blocks at most until its next chunk or its timeout


def _remote_pane(directory, i, pane, settings, stop, events: queue.Queue) -> None:
    def update(text: str):
        def apply(state: StreamState) -> None:
            state.texts[i], state.tokens[i] = text, state.tokens[i] + 1  # one SSE chunk is about one token
        return apply

    try:
        model = directory.model_for(pane[0])
        for text in model.stream(pane[1], settings, stop):
            events.put(update(text))
        events.put(lambda state: state.done.__setitem__(i, True))
    except Exception as exc:  # noqa: BLE001 - whatever broke (ModelError, or a client library's own error), the
        # pane says so and the others go on; a thread that died silently would leave the pane looking finished
        message = str(exc) if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"
        events.put(lambda state: state.errors.__setitem__(i, message))
    finally:
        events.put(_DONE)


def _local_panes(registry, local, panes, settings, stop, on_unload, events: queue.Queue) -> None:
    def apply_local(local_state: StreamState):
        texts, tokens, done, waiting = list(local_state.texts), list(local_state.tokens), list(local_state.done), \
            local_state.waiting

        def apply(state: StreamState) -> None:
            for j, i in enumerate(local):
                state.texts[i], state.tokens[i], state.done[i] = texts[j], tokens[j], done[j]
            state.waiting = waiting
        return apply

    try:
        for local_state in registry.stream([panes[i] for i in local], settings, stop=stop, on_unload=on_unload):
            events.put(apply_local(local_state))
    except ModelError as exc:  # over the memory budget, an adapter that will not attach: those panes say so
        message = str(exc)
        events.put(lambda state: [state.errors.__setitem__(i, message) for i in local])
    finally:
        events.put(_DONE)
