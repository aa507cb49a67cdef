"""What every request to the shared server passes before the app sees it: browser protections and the session gate.

- BrowserGuard, on every response: X-Frame-Options DENY and CSP `frame-ancestors 'none'` (no page of ours inside
  another site's frame, so no click-jacking), `X-Content-Type-Options: nosniff` (an upload served back is never run as
  a script or page because of its content) and `Referrer-Policy: same-origin` (our URLs, which may carry a job id or a
  `next=`, are not sent to other sites). On every state-changing request (anything but GET, HEAD, OPTIONS) and every
  websocket: refused with 403 when a browser says it comes from another site (Sec-Fetch-Site, else Origin, else
  Referer not naming this host). Scripts (gradio_client, curl) send none of these headers and pass.
- CSRF tokens for our own forms (login, logout): HMAC(secret key, purpose + nonce). The login form's nonce is a
  cookie set with the form (double submit, signed, so a cookie planted by a sibling site does not help); logout's is
  the session id.
- SessionGate, with logins on: every path except the login and logout routes and /healthz needs a live session;
  without one it answers 401 (the pages themselves are redirected to the login form before this, by
  ui.server.LoginRedirect). So /openapi.json, gradio's heartbeat, cancel, reset, app_id, upload and file routes
  say nothing to a visitor who has not signed in. Which session may touch which piece of state is checked further in
  (ui/guard.py); this gate only asks whether there is a session at all.

Cross-origin reads are closed by ui.server adding Starlette's CORSMiddleware with no allowed origin: gradio's own
CORS middleware then steps aside (it defers to a parent app that configures CORS) instead of reflecting origins with
credentials.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _host_of(url: str) -> str | None:
    try:
        return urlsplit(url).netloc.lower() or None
    except ValueError:
        return None


def cross_site(headers: Headers) -> bool:
    """Whether a browser says this request was started by another site. Sec-Fetch-Site (every current browser)
    decides when present; else Origin ("null" counts as foreign: sandboxed frames and some redirects send it); else
    Referer. The host compared with is the Host header: a reverse proxy must pass it on (nginx: `proxy_set_header
    Host $host`)."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")  # "none": typed or bookmarked by the user
    host = (headers.get("host") or "").lower()
    origin = headers.get("origin")
    if origin is not None:
        return _host_of(origin) != host
    referer = headers.get("referer")
    return referer is not None and _host_of(referer) != host


def from_browser(headers: Headers) -> bool:
    """Whether the request carries what browsers add to every form post; scripts such as gradio_client send none
    of it (and cannot be made to by another site's page), so they need no CSRF token."""
    return any(name in headers for name in ("sec-fetch-site", "origin", "referer"))


def csrf_token(secret: bytes, purpose: str, nonce: str) -> str:
    digest = hmac.new(secret, f"csrf\n{purpose}\n{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def csrf_ok(secret: bytes, purpose: str, nonce: str | None, token: str | None) -> bool:
    if not nonce or not token:
        return False
    return hmac.compare_digest(csrf_token(secret, purpose, nonce), token)


async def _send_json(send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


class BrowserGuard:
    """Security headers on every response; state-changing and websocket requests from another site refused."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if (scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS) and cross_site(Headers(scope=scope)):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await _send_json(send, 403, {"detail": "cross-site request refused"})
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name == "Content-Security-Policy" or name not in headers:
                        headers.append(name, value)  # a second CSP adds its limits to any the app sets
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SessionGate:
    """401 for every request without a live session, except the `public` paths (below any root path)."""

    def __init__(self, app, public: set[str], signed_in, route_path):
        self.app, self.public, self.signed_in, self.route_path = app, public, signed_in, route_path

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and self.route_path(scope) not in self.public:
            if not self.signed_in(scope):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                else:
                    await _send_json(send, 401, {"detail": "Not authenticated"})
                return
        await self.app(scope, receive, send)
