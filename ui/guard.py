"""Ties gradio's client-chosen identifiers and cached files to the signed-in user (plain ASGI middleware).

gradio keys each browser session's state (gr.State, the chat histories, component values) by a `session_hash` that
the client makes up, and serves every file in its cache (uploads, downloads) to whoever names its path. On a shared
server that lets one user who learns another's hash read and clear her chat, or fetch her files. The guard, in front
of the gradio apps (ui/server.py adds it when logins are on; without logins there is one user and nothing to guard):

- binds each session hash, event id and upload id to the first signed-in user who uses it, and answers 403 to any
  other user (401 without a session). Where a hash enters, in gradio 6.31's routes.py: the `session_hash` query
  parameter (queue/data, deep_link), the path (heartbeat/{hash}, stream/{hash}/...), the JSON body (queue/join,
  run/*, api/*, call/*, cancel, stream/{event_id}, component_server); event ids in the path (call/{api}/{id},
  stream/{id}) and in cancel's body; upload ids in upload and upload_progress's query.
- closes deep links (`/gradio_api/deep_link` and `?deep_link=` on a page): this app has no deep-link button, and a
  deep link copies a session's component values (file paths included) to a file anyone holding the link can load.
- records which user each file under gradio's upload folder was handed to (paths in the upload route's answer and in
  every event answer: JSON and the server-sent events of queue/data and call/{api}/{id}), and serves such a file
  (`/gradio_api/file=`, `/gradio_api/file/`) and accepts its path as an input only for a user it was handed to.

Bounded in memory: per user at most a fixed number of sessions, events, uploads and files, each forgotten after an
idle time; a session forgotten by the guard is dropped from gradio's state too (its hash is not left for another
user to claim), unless its page is still open (its heartbeat connection is up).
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from urllib.parse import parse_qs

from gradio.utils import get_upload_folder
from starlette.requests import Request

from ui.strings import t

SESSION_TTL_S = 6 * 3600  # a session with no request for this long and no open page is forgotten
SESSIONS_PER_USER = 500  # page loads / API clients per user remembered at once (oldest forgotten first)
EVENT_TTL_S = 3600  # an event id is read back (call/{api}/{id}) seconds after it is made
EVENTS_PER_USER = 2000
UPLOAD_TTL_S = 3600
UPLOADS_PER_USER = 500
FILE_TTL_S = 86400  # gradio's cache deletes files older than a day (ui/layout.py: delete_cache)
FILES_PER_USER = 5000
MAX_BODY_BYTES = 64 * 2**20  # JSON bodies read to find the session hash; gradio reads them whole too
MAX_SCAN_BYTES = 32 * 2**20  # a JSON answer larger than this is not scanned: its files stay refused

# Routes (below /gradio_api/) whose JSON body is read for a session hash, event id and input file paths.
_BODY_ROUTES = ("queue/join", "run/", "api/", "call/", "cancel", "stream/", "component_server")


class Owners:
    """key -> the user who first used it; per user at most `per_user` keys, each forgotten `ttl_s` after its last
    use (unless `keep(key)`); `on_forget(key)` is told about every key dropped."""

    def __init__(self, ttl_s: float, per_user: int, on_forget=None, keep=None, clock=time.monotonic):
        self.ttl_s, self.per_user, self.clock = ttl_s, per_user, clock
        self.on_forget, self.keep = on_forget, keep
        self.owner: dict[str, str] = {}
        self.by_user: dict[str, OrderedDict[str, float]] = {}  # user -> key -> last use, oldest first
        self.last_sweep = clock()

    def claim(self, key: str, user: str) -> bool:
        """True when `key` is free (it becomes the user's) or already the user's; False when another user's."""
        self.sweep()
        owner = self.owner.get(key)
        if owner is not None and owner != user:
            return False
        keys = self.by_user.setdefault(user, OrderedDict())
        keys[key] = self.clock()
        keys.move_to_end(key)
        self.owner[key] = user
        while len(keys) > self.per_user:  # the user's own oldest goes: one user cannot crowd out another's
            self.drop(user, next(iter(keys)))
        return True

    def owns(self, key: str, user: str) -> bool:
        self.sweep()
        return self.owner.get(key) == user

    def drop(self, user: str, key: str) -> None:
        self.by_user.get(user, {}).pop(key, None)
        if self.owner.get(key) == user:
            del self.owner[key]
            if self.on_forget is not None:
                self.on_forget(key)

    def sweep(self) -> None:
        """Forget keys idle longer than the ttl; at most once a minute (a pass over every key)."""
        now = self.clock()
        if now - self.last_sweep < min(60.0, self.ttl_s):
            return
        self.last_sweep = now
        for user, keys in list(self.by_user.items()):
            for key, used in list(keys.items()):
                if now - used > self.ttl_s and not (self.keep and self.keep(key)):
                    self.drop(user, key)
            if not keys:
                del self.by_user[user]


class FileOwners:
    """Which users each cached file was handed to (the same upload by two users is one file in gradio's cache)."""

    def __init__(self, ttl_s: float = FILE_TTL_S, per_user: int = FILES_PER_USER, clock=time.monotonic):
        self.tables: dict[str, Owners] = {}
        self.ttl_s, self.per_user, self.clock = ttl_s, per_user, clock

    def add(self, path: str, user: str) -> None:
        self.tables.setdefault(user, Owners(self.ttl_s, self.per_user, clock=self.clock)).claim(path, user)

    def allowed(self, path: str, user: str) -> bool:
        table = self.tables.get(user)
        return table is not None and table.owns(path, user)


def refusal(status: int) -> bytes:
    key = {401: "guard.sign_in", 404: "guard.deep_links_off", 413: "guard.too_large"}.get(status, "guard.not_yours")
    return json.dumps({"detail": " · ".join(t(key, lang) for lang in ("en", "zh"))}, ensure_ascii=False).encode()


async def respond(send, status: int) -> None:
    body = refusal(status)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def strings(value):
    """Every string inside a JSON value (file paths hide in FileData dicts and in streaming diffs alike)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def gradio_route(path: str) -> str | None:
    """The part of a request path below gradio's API prefix ("/zh/gradio_api/queue/join" -> "queue/join"), so the
    guard works for every mount and behind a proxy's root path."""
    head, sep, rest = path.partition("/gradio_api/")
    return rest if sep else None


def state_holders(server) -> list:
    """gradio's per-session state stores of the apps mounted in `server` (starlette puts the app in the scope)."""
    return [r.app.state_holder for r in getattr(server, "routes", []) if hasattr(getattr(r, "app", None),
                                                                                 "state_holder")]


class SessionGuard:
    """The middleware (see the module's docstring). `user_of(request)`: the signed-in user's name or None."""

    def __init__(self, app, user_of, upload_dir: str | None = None):
        self.app, self.user_of = app, user_of
        self.root = os.path.realpath(upload_dir or get_upload_folder())
        self.prefixes = tuple({os.path.abspath(upload_dir or get_upload_folder()) + os.sep, self.root + os.sep})
        self.live: dict[str, int] = {}  # session hash -> its open heartbeat connections (the page is open)
        self.holders: list | None = None
        self.sessions = Owners(SESSION_TTL_S, SESSIONS_PER_USER, on_forget=self.forget_state,
                               keep=self.live.__contains__)
        self.events = Owners(EVENT_TTL_S, EVENTS_PER_USER)
        self.uploads = Owners(UPLOAD_TTL_S, UPLOADS_PER_USER)
        self.files = FileOwners()

    def forget_state(self, session_hash: str) -> None:
        """A session the guard no longer knows must not keep its gradio state: another user could claim the hash
        and read it."""
        for holder in self.holders or []:
            with holder.lock:
                holder.session_data.pop(session_hash, None)
                holder.time_last_used.pop(session_hash, None)

    def cached(self, text: str) -> str | None:
        """The real path of `text` when it names something in gradio's upload folder, else None."""
        if not text.startswith(self.prefixes):
            return None
        real = os.path.realpath(text)
        return real if real.startswith(self.root + os.sep) else None

    def record_files(self, value, user: str) -> None:
        for text in strings(value):
            real = self.cached(text)
            if real is not None:
                self.files.add(real, user)

    def may_read(self, path: str, user: str) -> bool:
        real = self.cached(os.path.abspath(path))  # relative names resolve against the server's folder, as gradio's do
        return real is None or self.files.allowed(real, user)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.holders is None and "app" in scope:
            self.holders = state_holders(scope["app"])
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        route = gradio_route(scope["path"])
        if "deep_link" in query or route == "deep_link":  # closed: see the module's docstring
            await respond(send, 404)
            return
        if route is None:  # our pages and routes; gradio's page, assets and config carry no session
            await self.app(scope, receive, send)
            return
        raw, body = None, None
        if scope["method"] == "POST" and route.startswith(_BODY_ROUTES):
            read = await read_body(receive)
            if read is None:
                await respond(send, 413)
                return
            raw, body = read
        user = self.user_of(Request(scope))
        status = self.check(scope, route, query, body, user)
        if status:
            await respond(send, status)
            return
        await self.forward(scope, route, receive if raw is None else replay(raw, receive), send, user)

    def named(self, scope, route: str, query: dict, body) -> tuple[list, list, list, list]:
        """The session hashes, event ids, upload ids and cached file paths the request names (gradio's routes.py)."""
        method, parts = scope["method"], route.split("/")
        hashes, events = list(query.get("session_hash", [])), []
        uploads, files = list(query.get("upload_id", [])), []
        if parts[0] == "heartbeat" and len(parts) > 1:
            hashes.append(parts[1])
        elif parts[0] == "stream" and len(parts) > 1:  # GET stream/{hash}/...; POST stream/{event id}[/close]
            (hashes if method != "POST" else events).append(parts[1])
        elif parts[0] == "call" and method != "POST" and len(parts) >= 3:  # call/[v2/]{api}/{event id}
            events.append(parts[-1])
        elif route.startswith(("file=", "file/")):
            files.append(route[5:])
        if isinstance(body, dict):
            if isinstance(body.get("session_hash"), str):
                hashes.append(body["session_hash"])
            if parts[0] in ("cancel", "stream") and isinstance(body.get("event_id"), str):
                events.append(body["event_id"])
            # A cached file named as an input (a File component's value) is read by the handler: same rule as file=.
            files += [text for text in strings(body) if text.startswith(self.prefixes)]
        return hashes, events, uploads, files

    def check(self, scope, route: str, query: dict, body, user: str | None) -> int:
        """0 when the request may go on, else the status to answer."""
        if body is _NOT_JSON:
            return 403  # component_server with files: no component of this app takes them
        hashes, events, uploads, files = self.named(scope, route, query, body)
        if not (hashes or events or uploads or files or route.startswith("upload")):
            return 0  # nothing of anyone's: gradio's own login check decides
        if user is None:
            return 401
        if not all(self.events.owns(e, user) for e in events):
            return 403
        if not all(self.may_read(f, user) for f in files):
            return 403
        if not all(self.uploads.claim(u, user) for u in uploads):
            return 403
        return 0 if all(self.sessions.claim(h, user) for h in hashes) else 403

    async def forward(self, scope, route: str, receive, send, user: str | None) -> None:
        """Pass the request on; note the files (and event ids) in its answer as the user's before they reach her."""
        parts = route.split("/")
        heartbeat = parts[0] == "heartbeat" and len(parts) > 1
        if heartbeat:
            self.live[parts[1]] = self.live.get(parts[1], 0) + 1
        try:
            await self.app(scope, receive, AnswerScanner(self, user, send) if user else send)
        finally:
            if heartbeat:
                self.live[parts[1]] -= 1
                if not self.live[parts[1]]:
                    del self.live[parts[1]]


_NOT_JSON = object()  # a body the guard cannot read for a session hash


async def read_body(receive) -> tuple[bytes, object] | None:
    """The request's body, whole, and its JSON value (_NOT_JSON when it is not JSON); None when it is over
    MAX_BODY_BYTES. A body the guard cannot read is refused, so gradio never acts on a session hash the guard missed.
    """
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY_BYTES:
            return None
        if not message.get("more_body"):
            break
    raw = b"".join(chunks)
    try:
        return raw, (json.loads(raw) if raw.strip() else {})
    except ValueError:  # UnicodeDecodeError too
        return raw, _NOT_JSON


def replay(raw: bytes, receive):
    """A receive() that hands the app the body the guard read, then waits on the client as usual."""
    sent = False

    async def again():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return again


class AnswerScanner:
    """Wraps `send`: reads the answer's JSON (whole, or line by line for server-sent events) and records the cached
    files in it as the user's, and the event id a join returns, before the part that names them is sent on."""

    def __init__(self, guard: SessionGuard, user: str, send):
        self.guard, self.user, self.send = guard, user, send
        self.mode: str | None = None  # "json", "sse" or None (not read: files, pages)
        self.buffer = bytearray()

    async def __call__(self, message):
        if message["type"] == "http.response.start":
            kind = dict(message.get("headers", [])).get(b"content-type", b"").decode("latin-1")
            self.mode = "sse" if "event-stream" in kind else "json" if "json" in kind else None
        elif message["type"] == "http.response.body" and self.mode:
            self.buffer += message.get("body", b"")
            last = not message.get("more_body", False)
            if self.mode == "sse":
                self.scan_lines(last)
            elif len(self.buffer) > MAX_SCAN_BYTES:
                self.mode, self.buffer = None, bytearray()  # too large to read: its files stay refused
            elif last:
                self.note(bytes(self.buffer))
        await self.send(message)

    def scan_lines(self, last: bool) -> None:
        end = len(self.buffer) if last else self.buffer.rfind(b"\n") + 1
        lines, self.buffer = bytes(self.buffer[:end]), self.buffer[end:]
        for line in lines.splitlines():
            if line.startswith(b"data:"):
                self.note(line[5:])
        if len(self.buffer) > MAX_SCAN_BYTES:  # one endless line: stop reading it
            self.mode, self.buffer = None, bytearray()

    def note(self, raw: bytes) -> None:
        if b"event_id" not in raw and not any(p.encode() in raw for p in self.guard.prefixes):
            return  # most stream updates (chat tokens) name no file: not worth parsing
        try:
            value = json.loads(raw)
        except ValueError:
            return
        if isinstance(value, dict) and isinstance(value.get("event_id"), str) and len(value) == 1:
            self.guard.events.claim(value["event_id"], self.user)  # the answer of queue/join and call/{api}
        self.guard.record_files(value, self.user)
