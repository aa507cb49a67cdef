"""A limit on failed logins, per (user name, client address), per address and per user name, in memory. No gradio.

Every password check costs ~50 ms of scrypt (hosting/users.py), so without a limit anyone who can reach the login
form can guess passwords as fast as the CPU allows and keep the server's cores busy doing it. Like fail2ban, but in
the process: failures are counted in a sliding window, and a client over a limit is refused before its password
is checked, until enough of its failures have left the window.

Three counts, each in the same 5-minute window:
- per (user name, address), 5: the one a person who mistypes meets. A guesser elsewhere does not lock the real
  user (the admin included) out from their own address.
- per address, 20: the backstop against one address trying many names.
- per user name across all addresses, 100: a cap on guessing one password from many addresses; high, because
  reaching it locks that name out everywhere until the window slides.

Only failures count: refused attempts cost nothing, and counting them would keep a user locked out for as long as
someone else keeps trying their name. A success clears that (name, address) pair's failures only: on a shared
network, one person signing in must not reset the count of another guessing from the same address, and a user
signing in from home must not reset a guesser's count elsewhere.

The address is the socket's. Behind a reverse proxy it is the proxy's, unless the admin names the proxy with
`--trusted-proxy` (app.py): only then does X-Forwarded-For count, so a client cannot choose its own address.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque

WINDOW_S = 300  # failures older than 5 minutes are forgotten
MAX_FAILURES_PER_PAIR = 5  # per (user name, address): a person who mistypes is not stopped, a guesser is
MAX_FAILURES_PER_ADDRESS = 20  # per client address: several people behind one NAT still get in
MAX_FAILURES_PER_USER = 100  # per user name from all addresses together: many addresses guessing one password
MAX_KEYS = 10_000  # pairs, addresses and names tracked (each); the least recently failing go beyond this
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

    def __init__(self, max_per_pair: int = MAX_FAILURES_PER_PAIR, max_per_address: int = MAX_FAILURES_PER_ADDRESS,
                 max_per_user: int = MAX_FAILURES_PER_USER, window_s: float = WINDOW_S, max_keys: int = MAX_KEYS,
                 clock=time.monotonic):
        if min(max_per_pair, max_per_address, max_per_user, max_keys) < 1 or window_s <= 0:
            raise ValueError(f"login limits must be positive (per user and address {max_per_pair}, per address "
                             f"{max_per_address}, per user {max_per_user}, window {window_s} s, keys {max_keys})")
        self.clock = clock
        self._pairs = _Counter(max_per_pair, window_s, max_keys)
        self._addresses = _Counter(max_per_address, window_s, max_keys)
        self._users = _Counter(max_per_user, window_s, max_keys)
        self._lock = threading.Lock()

    @staticmethod
    def _keys(username: str | None, address: str | None) -> tuple[str, str, str]:
        # The same name the store checks (it strips spaces), cut to the longest possible one; "\n" never occurs
        # in a name or an address, so pairs cannot collide.
        name = (username or "").strip()[:MAX_NAME_CHARS].replace("\n", " ")
        address = address or ""
        return f"{name}\n{address}", address, name

    def retry_after(self, username: str | None, address: str | None) -> int:
        """Whole seconds to wait before this user name may be tried from this address; 0: go ahead."""
        pair, address, name = self._keys(username, address)
        with self._lock:
            now = self.clock()
            counters = ((self._pairs, pair), (self._addresses, address), (self._users, name))
            for counter, _ in counters:
                counter.drop_expired(now)
            wait = max(counter.wait(key, now) for counter, key in counters)
        return math.ceil(wait)

    def failed(self, username: str | None, address: str | None) -> None:
        pair, address, name = self._keys(username, address)
        with self._lock:
            now = self.clock()
            self._pairs.add(pair, now)
            self._addresses.add(address, now)
            self._users.add(name, now)

    def succeeded(self, username: str | None, address: str | None) -> None:
        pair, _, _ = self._keys(username, address)
        with self._lock:
            self._pairs.clear(pair)

    def tracked(self) -> tuple[int, int, int]:
        """(pairs, addresses, user names) with failures still remembered: for tests and a glance at memory use."""
        with self._lock:
            return len(self._pairs.times), len(self._addresses.times), len(self._users.times)
