"""Streaming several panes from one batched `generate`: a streamer fed by the generating thread, read by the caller.

transformers' TextIteratorStreamer only takes batch size 1; this one keeps one token list per row, stops
recording a row at its end-of-sequence token (generate pads finished rows from then on), and decodes each row's
whole answer for every update, so multi-byte characters split across tokens never show up half-decoded for long.

Updates come at most every `interval_s` (the first token and the end at once): a browser shows no more than that,
and decoding the texts on every step competes with the generating thread for the interpreter (bench_chat.py).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from transformers.generation.stopping_criteria import StoppingCriteria
from transformers.generation.streamers import BaseStreamer

_END = object()


@dataclass
class StreamState:
    """Every pane's answer so far. `waiting` > 0 while other requests are ahead in the generation queue."""

    texts: list[str]
    tokens: list[int]  # new tokens per pane so far
    done: list[bool]  # the pane has produced its end-of-sequence token
    waiting: int = 0
    first_token_s: float | None = None  # seconds from the request to the first new token
    elapsed_s: float = 0.0
    finished: bool = False  # generation is over (all panes done, max_new_tokens reached, or stopped)
    stopped: bool = False  # it ended because Stop was pressed (or the reader went away)
    errors: list = field(default_factory=list)  # per pane: why it failed (a remote model), else None; may be empty
    started: float = field(default_factory=time.perf_counter, repr=False)

    def tokens_per_s(self) -> list[float]:
        """Decoding speed per pane, from its first token on (time to first token excluded)."""
        span = self.elapsed_s - (self.first_token_s or 0.0)
        return [max(n - 1, 0) / span if span > 0 else 0.0 for n in self.tokens]


class StopOnEvent(StoppingCriteria):
    """Stops every row as soon as the event is set (the user pressed Stop, or the reader went away)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


UPDATE_INTERVAL_S = 0.05  # 20 updates a second


class PaneStreamer(BaseStreamer):
    def __init__(self, tokenizer, n_panes: int, eos_ids: set[int], prompt_len: int,
                 interval_s: float = UPDATE_INTERVAL_S):
        self.tokenizer = tokenizer
        self.interval_s = interval_s
        self.eos_ids = eos_ids
        self.prompt_len = prompt_len
        self.ids: list[list[int]] = [[] for _ in range(n_panes)]
        self.done = [False] * n_panes
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._prompt_seen = False
        self._ended = threading.Event()

    # -- called by generate, in the generating thread --
    def put(self, value) -> None:
        if not self._prompt_seen and value.dim() == 2 and value.shape[1] == self.prompt_len:
            self._prompt_seen = True  # generate first hands over the prompt itself
            return
        self._queue.put(value.reshape(len(self.ids), -1).tolist())

    def end(self) -> None:
        self._queue.put(_END)
        self._ended.set()

    def fail(self, exc: BaseException) -> None:
        self._error = exc

    # -- called by the reader --
    def _absorb(self, rows: list[list[int]]) -> None:
        for i, new in enumerate(rows):
            for token in new:
                if self.done[i]:
                    break
                if token in self.eos_ids:
                    self.done[i] = True
                else:
                    self.ids[i].append(token)

    def _texts(self, final: bool) -> list[str]:
        texts = self.tokenizer.batch_decode(self.ids, skip_special_tokens=True)
        # A character split across tokens decodes to U+FFFD until its last byte arrives: hide it until then.
        return texts if final else [t.rstrip("\ufffd") for t in texts]

    def _absorb_until(self, deadline: float) -> bool:
        """Take in the steps that arrived by `deadline`, or by the end (which stays queued; True then). Sleeping
        rather than waking for every step leaves the interpreter to the generating thread."""
        self._ended.wait(max(deadline - time.perf_counter(), 0.0))
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _END:
                self._queue.put(_END)
                return True
            self._absorb(item)

    def states(self, waiting: Callable[[], int]) -> Iterator[StreamState]:
        state = StreamState([""] * len(self.ids), [0] * len(self.ids), list(self.done))
        last_update = None
        while True:
            try:
                item = self._queue.get(timeout=0.25)
            except queue.Empty:
                state.waiting = max(waiting(), 0)
                if state.waiting:
                    yield state
                continue
            state.waiting = 0
            state.elapsed_s = time.perf_counter() - state.started
            if item is _END:
                break
            self._absorb(item)
            if last_update is not None:  # the first token shows at once; later ones at most every interval_s
                if self._absorb_until(last_update + self.interval_s):
                    continue  # the final state follows at once
                state.elapsed_s = time.perf_counter() - state.started
            if state.first_token_s is None:
                state.first_token_s = state.elapsed_s
            last_update = time.perf_counter()
            state.texts, state.tokens, state.done = self._texts(False), [len(r) for r in self.ids], list(self.done)
            yield state
        if self._error is not None:
            raise self._error
        state.texts, state.tokens, state.done = self._texts(True), [len(r) for r in self.ids], list(self.done)
        state.finished = True
        yield state
