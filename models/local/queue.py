"""A first-come-first-served lock for the one accelerator: every generation (all users, all tabs) takes a ticket.

`threading.Lock` is not fair and cannot say how many requests are ahead; users waiting behind someone else's long
answer should see their place in line instead of a frozen page.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from contextlib import contextmanager
from typing import Iterator


class GenerationQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._line: deque[int] = deque()
        self._numbers = itertools.count()

    def enter(self) -> int:
        """Join the end of the line; returns the ticket."""
        with self._cond:
            ticket = next(self._numbers)
            self._line.append(ticket)
            return ticket

    def ahead(self, ticket: int) -> int:
        """How many tickets are ahead of this one (0: it is this ticket's turn); -1 once it has left."""
        with self._cond:
            try:
                return self._line.index(ticket)
            except ValueError:
                return -1

    def wait(self, ticket: int, timeout: float | None = None) -> bool:
        """Block until it is this ticket's turn (True) or the timeout passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._line) and self._line[0] == ticket, timeout)

    def leave(self, ticket: int) -> None:
        """Give up the turn, or the place in line; idempotent."""
        with self._cond:
            try:
                self._line.remove(ticket)
            except ValueError:
                return
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._line)

    @contextmanager
    def turn(self) -> Iterator[None]:
        ticket = self.enter()
        try:
            self.wait(ticket)
            yield
        finally:
            self.leave(ticket)
