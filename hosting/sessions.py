"""Login sessions kept on the server, so that they can be listed and ended. No gradio.

    <data_dir>/sessions.sqlite   a row per session: id, user, created, last seen, expiry, client address, user agent

The login cookie holds a random token (256 bits). The database keeps only HMAC-SHA256(secret key, token), so a copy
of the database signs nobody in, and a new secret key (`<data_dir>/secret_key` deleted, then a restart) matches no
row: everyone signs in again. Each row also keeps a keyed digest of the user's password hash at sign-in (the
"binding"): a changed password or a removed user ends every session of that user at its next use, and at once when
the running server re-reads the users file.

A session ends on log-out, on expiry (7 days after sign-in), when its user changes password or is removed, when the
admin revokes it (`python -m hosting.users revoke ID|--user NAME|--all`), or when the same user has more than
MAX_PER_USER sessions (the oldest goes: a script that signs in on every run cannot grow the table without bound).

Several threads and several processes on one data dir share the file: SQLite in WAL mode with a busy timeout,
one connection per thread, and every change in one statement or one IMMEDIATE transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

SESSIONS_FILE = "sessions.sqlite"
SESSION_SECONDS = 7 * 24 * 3600
TOKEN_PREFIX = "s2."  # v1 tokens were stateless signed ones; they no longer sign anyone in
TOUCH_S = 60.0  # last_seen is written at most once a minute per session: requests read, they rarely write
MAX_PER_USER = 100
MAX_AGENT_CHARS = 256  # the user agent is shown to the admin, not trusted; a longer one only costs space

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,                -- shown to the admin and used to revoke; not a credential
    token_hash TEXT NOT NULL UNIQUE,    -- HMAC-SHA256(secret key, cookie token), hex
    user TEXT NOT NULL,
    binding TEXT NOT NULL,              -- HMAC of the user's password hash at sign-in
    created REAL NOT NULL,
    last_seen REAL NOT NULL,
    expires REAL NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires);
"""
COLUMNS = "id, user, created, last_seen, expires, address, user_agent"


@dataclass(frozen=True)
class SessionInfo:
    id: str
    user: str
    created: float
    last_seen: float
    expires: float
    address: str
    user_agent: str


class SessionStore:
    """The sessions table. `secret` keys the token hashes and bindings; the admin's CLI, which only lists and
    revokes, passes none."""

    def __init__(self, path: Path, secret: bytes | None = None, max_age: int = SESSION_SECONDS,
                 max_per_user: int = MAX_PER_USER, clock: Callable[[], float] = time.time):
        self.path, self.secret, self.max_age, self.max_per_user, self.clock = (
            Path(path), secret, max_age, max_per_user, clock)
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db().executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        # One connection per thread (FastAPI's worker threads are reused): no lock of ours around the reads that
        # every request makes; SQLite's own locking orders the writes of threads and of other processes.
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def _keyed(self, kind: str, text: str) -> str:
        if self.secret is None:
            raise RuntimeError("this session store was opened without the secret key (list and revoke only)")
        return hmac.new(self.secret, f"{kind}\n{text}".encode(), hashlib.sha256).hexdigest()

    def binding(self, fingerprint: str) -> str:
        return self._keyed("binding", fingerprint)

    # -- sign-in and each request --------------------------------------------------------------------------------

    def create(self, user: str, fingerprint: str, address: str = "", user_agent: str = "") -> tuple[str, SessionInfo]:
        """A new session: (the cookie's token, its row). Two sign-ins in the same second get different tokens."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        info = SessionInfo(secrets.token_hex(8), user, now, now, now + self.max_age, address or "",
                           (user_agent or "")[:MAX_AGENT_CHARS])
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM sessions WHERE expires <= ?", (now,))
            db.execute(f"INSERT INTO sessions ({COLUMNS}, token_hash, binding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (info.id, info.user, info.created, info.last_seen, info.expires, info.address,
                        info.user_agent, self._keyed("token", token), self.binding(fingerprint)))
            # Beyond the cap the oldest sessions of this user go, so the table stays small.
            db.execute("DELETE FROM sessions WHERE user = ? AND id NOT IN (SELECT id FROM sessions WHERE user = ? "
                       "ORDER BY created DESC, id LIMIT ?)", (user, user, self.max_per_user))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return token, info

    def lookup(self, token: str | None) -> tuple[SessionInfo, str] | None:
        """(the session, its binding) for a cookie's token, or None: unknown, revoked or expired. Notes the time
        it was last seen (at most once a minute)."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 100:
            return None
        db = self._db()
        row = db.execute(f"SELECT {COLUMNS}, binding FROM sessions WHERE token_hash = ?",
                         (self._keyed("token", token),)).fetchone()
        if row is None:
            return None
        info, binding = SessionInfo(*row[:-1]), row[-1]
        now = self.clock()
        if info.expires <= now:
            self.revoke(info.id, wait=False)
            return None
        if now - info.last_seen > TOUCH_S:
            self._write_or_skip("UPDATE sessions SET last_seen = ? WHERE id = ?", (now, info.id))
        return info, binding

    def _write_or_skip(self, sql: str, params: tuple) -> int:
        # Called on the request path (even on the event loop, from the session gate): while another process
        # holds the write lock, skip rather than wait. What is skipped is a last-seen time, or the deletion of a
        # row that is refused anyway and deleted at a later request.
        db = self._db()
        db.execute("PRAGMA busy_timeout = 50")
        try:
            return db.execute(sql, params).rowcount
        except sqlite3.OperationalError:
            return 0
        finally:
            db.execute("PRAGMA busy_timeout = 30000")

    # -- the admin -------------------------------------------------------------------------------------------------

    def list(self, user: str | None = None) -> list[SessionInfo]:
        """Live sessions, newest first (expired ones are not shown)."""
        where, params = ("AND user = ?", (self.clock(), user)) if user else ("", (self.clock(),))
        rows = self._db().execute(f"SELECT {COLUMNS} FROM sessions WHERE expires > ? {where} "
                                  "ORDER BY created DESC, id", params).fetchall()
        return [SessionInfo(*row) for row in rows]

    def revoke(self, session_id: str, wait: bool = True) -> bool:
        if not wait:
            return self._write_or_skip("DELETE FROM sessions WHERE id = ?", (session_id,)) > 0
        return self._db().execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0

    def revoke_user(self, user: str) -> int:
        return self._db().execute("DELETE FROM sessions WHERE user = ?", (user,)).rowcount

    def revoke_all(self) -> int:
        return self._db().execute("DELETE FROM sessions").rowcount

    def revoke_stale(self, fingerprints: Mapping[str, str]) -> int:
        """End the sessions of users who are gone or whose password changed; `fingerprints`: user -> the
        fingerprint of their current password (hosting.users.Account.fingerprint)."""
        bindings = {user: self.binding(fp) for user, fp in fingerprints.items()}
        db = self._db()
        stale = [session_id for session_id, user, binding in db.execute("SELECT id, user, binding FROM sessions")
                 if not hmac.compare_digest(bindings.get(user, ""), binding)]
        # Not waiting for a lock held by another process: what is missed here is refused and deleted at its next use.
        return sum(self.revoke(session_id, wait=False) for session_id in stale)


class Sessions:
    """The sessions of one server: the store checked against the users on every request. `users` is a
    hosting.users.UserStore (anything with `account(name)` whose accounts have `.user` and `.fingerprint`)."""

    def __init__(self, store: SessionStore, users):
        self.store, self.users = store, users
        add_listener = getattr(users, "add_listener", None)
        if add_listener is not None:  # the users file changed: end removed users' and changed passwords' sessions
            add_listener(lambda accounts: store.revoke_stale({n: a.fingerprint for n, a in accounts.items()}))

    def issue(self, name: str, address: str = "", user_agent: str = "") -> str:
        account = self.users.account(name)
        if account is None:
            raise KeyError(name)
        token, _ = self.store.create(name, account.fingerprint, address, user_agent)
        return token

    def session(self, token: str | None):
        """(SessionInfo, User) for a valid token, else None; a session whose user is gone or has a new password
        is deleted here, so it stays ended even if the same password comes back."""
        found = self.store.lookup(token)
        if found is None:
            return None
        info, binding = found
        account = self.users.account(info.user)
        if account is None or not hmac.compare_digest(self.store.binding(account.fingerprint), binding):
            self.store.revoke(info.id, wait=False)
            return None
        return info, account.user

    def user(self, token: str | None):
        found = self.session(token)
        return found[1] if found else None

    def revoke(self, token: str | None) -> bool:
        found = self.store.lookup(token)
        return self.store.revoke(found[0].id) if found else False
