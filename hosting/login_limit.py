"""A limit on failed logins, per user name and per client address, in memory. No gradio.

Every password check costs ~50 ms of scrypt (hosting/users.py), so without a limit anyone who can reach the login
form can guess passwords as fast as the CPU allows and keep the server's cores busy doing it. Like fail2ban, but in
the process: failures are counted in a sliding window, and a client over the limit is refused before its password
is checked, until enough of its failures have left the window.

Only failures count: refused attempts cost nothing, and counting them would keep a user locked out for as long as
someone else keeps trying their name. A success clears that user name's failures (not the address's: on a shared
network, one person signing in must not reset the count of another guessing from the same address).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque

WINDOW_S = 300  # failures older than 5 minutes are forgotten
MAX_FAILURES_PER_USER = 5  # per user name in the window: a person who mistypes is not stopped, a guesser is
MAX_FAILURES_PER_ADDRESS = 20  # per client address in the window: several people behind one NAT still get in
MAX_KEYS = 10_000  # user names and addresses tracked (each); the least recently failing one is dropped beyond this
MAX_NAME_CHARS = 64  # no user name is longer (hosting.users.NAME_RE): longer keys would only cost memory


class _Counter:
    """Failure times per key, newest key last, each key keeping only the times that can still matter."""

    def __init__(self, limit: int, window_s: float, max_keys: int):
        self.limit, self.window_s, self.max_keys = limit, window_s, max_keys
        # Key -> failure times, oldest first. Only the last `limit` times decide when a key is allowed again.
        self.times: OrderedDict[str, deque[float]] = OrderedDict()

    def drop_expired(self, now: float) -> None:
        # Keys are ordered by their latest failure, so every key whose latest failure left the window is at the front.
        while self.times:
            key, times = next(iter(self.times.items()))
            if times[-1] > now - self.window_s:
                break
            del self.times[key]

    def add(self, key: str, now: float) -> None:
        self.drop_expired(now)
        times = self.times.pop(key, None) or deque(maxlen=self.limit)
        times.append(now)
        self.times[key] = times  # to the end: the most recent failure
        while len(self.times) > self.max_keys:
            self.times.popitem(last=False)

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` is below its limit again (0: it is below now)."""
        times = self.times.get(key)
        if times is None or len(times) < self.limit:
            return 0.0
        # Below the limit once the oldest of the last `limit` failures leaves the window.
        return max(0.0, times[-self.limit] + self.window_s - now)

    def clear(self, key: str) -> None:
        self.times.pop(key, None)


class LoginLimiter:
    """Thread-safe: the login route runs in FastAPI's worker threads. `clock` is injectable for tests."""

    def __init__(self, max_per_user: int = MAX_FAILURES_PER_USER, max_per_address: int = MAX_FAILURES_PER_ADDRESS,
                 window_s: float = WINDOW_S, max_keys: int = MAX_KEYS, clock=time.monotonic):
        if max_per_user < 1 or max_per_address < 1 or window_s <= 0 or max_keys < 1:
            raise ValueError(f"login limits must be positive (per user {max_per_user}, per address "
                             f"{max_per_address}, window {window_s} s, keys {max_keys})")
        self.clock = clock
        self._users = _Counter(max_per_user, window_s, max_keys)
        self._addresses = _Counter(max_per_address, window_s, max_keys)
        self._lock = threading.Lock()

    @staticmethod
    def _name(username: str | None) -> str:
        # The same name the store checks (it strips spaces), cut to the longest possible one.
        return (username or "").strip()[:MAX_NAME_CHARS]

    def retry_after(self, username: str | None, address: str | None) -> int:
        """Whole seconds to wait before this user name may be tried from this address; 0: go ahead."""
        with self._lock:
            now = self.clock()
            self._users.drop_expired(now)
            self._addresses.drop_expired(now)
            wait = max(self._users.wait(self._name(username), now), self._addresses.wait(address or "", now))
        return math.ceil(wait)

    def failed(self, username: str | None, address: str | None) -> None:
        with self._lock:
            now = self.clock()
            self._users.add(self._name(username), now)
            self._addresses.add(address or "", now)

    def succeeded(self, username: str | None) -> None:
        with self._lock:
            self._users.clear(self._name(username))

    def tracked(self) -> tuple[int, int]:
        """(user names, addresses) with failures still remembered: for tests and a glance at memory use."""
        with self._lock:
            return len(self._users.times), len(self._addresses.times)
