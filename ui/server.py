"""The web server of a shared demo: our login, logout and health routes around the Gradio app in both languages.

    /            the app in the default language      /zh/ (or /en/)   the same app in the other language
    /login       GET: the sign-in form; POST: username, password (browsers and gradio_client's `auth=`)
    /logout      POST (with the page's CSRF token): ends the session; GET: asks first
    /healthz     {"status": "ok"}, no login needed

A session is a row on the server (hosting.sessions): the cookie holds a random token, checked on every request, so
log-out, a password change, a removed user and `python -m hosting.users revoke` end it at once. With logins on,
every path but /login, /logout and /healthz needs a session (ui.web_guard.SessionGate: 401, or for the pages a
redirect to the form). Every response forbids framing; state-changing requests from another site are refused, and
our forms carry CSRF tokens (ui.web_guard). Cross-origin reads get no CORS headers.

Failed logins are limited per (user name, address), per address and per user name (hosting.login_limit): over a
limit, /login answers 429 with Retry-After before checking the password. The address is the socket's; the
X-Forwarded-For of a proxy counts only when app.py's --trusted-proxy names it.

Links and redirects are relative, so the app also works behind a reverse proxy that serves it under a sub-path.
"""

from __future__ import annotations

import dataclasses
import html
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import gradio as gr
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.middleware.cors import CORSMiddleware

from hosting.login_limit import LoginLimiter
from hosting.sessions import SESSION_SECONDS, SESSIONS_FILE, Sessions, SessionStore
from hosting.users import load_secret
from ui.context import AppContext, with_services
from ui.guard import SessionGuard
from ui.layout import PAGE_CSS, build_app
from ui.page_lang import PageLanguage
from ui.strings import t
from ui.web_guard import BrowserGuard, SessionGate, cross_site, csrf_ok, csrf_token, from_browser

COOKIE = "medtune_session"
CSRF_COOKIE = "medtune_csrf"  # the login form's nonce (double submit); not a session
_SCOPE_KEY = "medtune.session"  # the request's (SessionInfo, User) or None, looked up once per request


@dataclass(frozen=True)
class ServerSettings:
    max_file_size: int | None = None  # bytes per upload; None: no limit
    concurrency: int = 1  # Gradio's default concurrency limit per event
    open_warning: bool = False  # no login on a non-loopback address: a banner on every page says so


def route_path(request_or_scope) -> str:
    """The path below the root path: uvicorn's --root-path prefixes it to every request path (app.py passes it)."""
    scope = getattr(request_or_scope, "scope", request_or_scope)
    path, root = scope["path"], scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root):] or "/"
    return path


def _up(path: str) -> str:
    """The relative way from a request path back to the site root: "/login" -> "./", "/zh/login" -> "../"."""
    return "../" * (path.count("/") - 1) or "./"


def _safe_next(target: str) -> str:
    """A page under this site to return to after signing in (relative); anything else becomes the home page."""
    target = (target or "").strip()
    parts = urlsplit(target)
    if (parts.scheme or parts.netloc or target.startswith(("/", "\\")) or "\\" in target
            or ".." in parts.path.split("/") or any(ord(c) < 32 for c in target)):
        return ""
    return target


def _both(lang: str, key: str, **values) -> str:
    """A string in the page's language, then the other one, escaped for HTML."""
    langs = (lang, "en" if lang == "zh" else "zh")
    return " · ".join(html.escape(t(key, x).format(**values) if values else t(key, x)) for x in langs)


_STYLE = """<style>body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;background:#f6f7f9;display:flex;
justify-content:center;padding-top:10vh}form{background:#fff;padding:2em;border-radius:8px;width:22em;
box-shadow:0 1px 4px #0002}label{display:block;margin-top:1em}input{width:100%;padding:.5em;box-sizing:border-box}
button{margin-top:1.5em;width:100%;padding:.6em}.error{color:#b00020}.note{color:#555;font-size:.9em}</style>"""


def _page(lang: str, title_key: str, form: str) -> str:
    return f"""<!doctype html>
<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_both(lang, title_key)}</title>
{_STYLE}</head><body>{form}</body></html>"""


def login_page(lang: str, next_page: str = "", error: bool = False, wait_s: int = 0, csrf: str = "",
               expired: bool = False) -> str:
    """A small form in both languages, the page's language first; posts to `login` beside it. `error`: the last
    password was wrong; `wait_s`: too many failures, try again in that many seconds; `expired`: the last post had
    no valid CSRF token or came from another site; `csrf`: this form's token."""
    message = (_both(lang, "server.login_limited", seconds=wait_s) if wait_s
               else _both(lang, "server.form_expired") if expired
               else _both(lang, "server.bad_login") if error else "")
    message = f'<p class="error" role="alert">{message}</p>' if message else ""
    return _page(lang, "server.login_title", f"""<form method="post" action="login">
<h1>{html.escape(t("app.title", lang))}</h1><h2>{_both(lang, "server.login_title")}</h2>{message}
<label>{_both(lang, "server.username")}<input name="username" autocomplete="username" required autofocus></label>
<label>{_both(lang, "server.password")}<input name="password" type="password" autocomplete="current-password"
 required></label><input type="hidden" name="next" value="{html.escape(next_page)}">
<input type="hidden" name="csrf" value="{html.escape(csrf)}">
<button type="submit">{_both(lang, "server.sign_in")}</button><p class="note">{_both(lang, "server.login_note")}</p>
</form>""")


def logout_page(lang: str, csrf: str, refused: bool = False) -> str:
    """Asks before logging out (GET /logout, or a post without a valid token): one button posting the token."""
    message = f'<p class="error" role="alert">{_both(lang, "server.form_expired")}</p>' if refused else ""
    return _page(lang, "server.log_out", f"""<form method="post" action="logout">
<h1>{html.escape(t("app.title", lang))}</h1><h2>{_both(lang, "server.log_out_question")}</h2>{message}
<input type="hidden" name="csrf" value="{html.escape(csrf)}">
<button type="submit" id="log-out">{_both(lang, "server.log_out")}</button></form>""")


class LoginRedirect:
    """Send a browser that asks for an app page without a valid session to the login form (plain ASGI, so the
    app's streaming responses pass through untouched)."""

    def __init__(self, app, pages: set[str], signed_in):
        self.app, self.pages, self.signed_in = app, pages, signed_in

    async def __call__(self, scope, receive, send):
        if (scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and route_path(scope) in self.pages
                and not self.signed_in(scope)):
            query = scope.get("query_string", b"").decode("latin-1")
            next_page = route_path(scope)[1:] + (f"?{query}" if query else "")
            # Relative: "/" -> /login, "/zh/" -> /zh/login (the form in that language); works under a proxy prefix.
            response = RedirectResponse(f"login?next={quote(next_page, safe='')}", status_code=303)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


@dataclass
class _Auth:
    """What the login routes and the gates share: the sessions, the key for CSRF tokens, the failure limits."""
    sessions: Sessions | None
    secret: bytes
    limiter: LoginLimiter

    def current(self, scope) -> tuple | None:
        """(SessionInfo, User) of the request's cookie, or None; looked up once per request (the gate, the
        redirect and gradio's auth dependency all ask)."""
        if self.sessions is None:
            return None
        if _SCOPE_KEY not in scope:
            scope[_SCOPE_KEY] = self.sessions.session(Request(scope).cookies.get(COOKIE))
        return scope[_SCOPE_KEY]

    def user_name(self, request: Request) -> str | None:
        found = self.current(request.scope)
        return found[1].name if found else None

    def logout_token(self, request) -> str | None:
        """The CSRF token of the page's log-out button: bound to the session's id (gr.Request or FastAPI's)."""
        inner = getattr(request, "request", None) or request
        found = self.current(inner.scope) if hasattr(inner, "scope") else None
        return csrf_token(self.secret, "logout", found[0].id) if found else None


def create_server(ctx: AppContext, settings: ServerSettings = ServerSettings()) -> FastAPI:
    """The FastAPI app to serve with uvicorn: our routes, then the app in the other language, then the default."""
    other = "zh" if ctx.lang == "en" else "en"
    ctx = with_services(ctx)  # one job scheduler for both languages' apps
    sessions = None
    secret = secrets.token_bytes(32)  # no logins: CSRF tokens are not used, any key will do
    if ctx.users is not None:
        secret = load_secret(ctx.data_dir)
        sessions = Sessions(SessionStore(ctx.data_dir / SESSIONS_FILE, secret), ctx.users)
    # One limiter for both languages' /login, or each would allow the limit again.
    auth = _Auth(sessions, secret, LoginLimiter())

    server = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @server.get("/healthz")
    def healthz():
        return {"status": "ok"}

    for prefix, lang in (("", ctx.lang), (f"/{other}", other)):
        add_login_routes(server, prefix, lang, auth)
        add_logout_routes(server, prefix, lang, auth)

    for path, lang in ((f"/{other}", other), ("/", ctx.lang)):  # the sub-path first: "/" would catch everything
        page_ctx = dataclasses.replace(ctx, lang=lang)
        up = "" if path == "/" else "../"
        blocks = build_app(page_ctx, switch_href=f"{other}/" if path == "/" else "../", logout_href=f"{up}logout",
                           open_warning=settings.open_warning,
                           logout_token=auth.logout_token if sessions else None)
        blocks.queue(default_concurrency_limit=settings.concurrency)
        # No root_path here: uvicorn's (app.py) puts it in every request's scope, where Gradio finds it, and a
        # Gradio root_path on a sub-mount would break that mount's routing. No /openapi.json on the mounted app
        # either (FastAPI's default): it lists every route to anyone.
        # show_error=False: no exception's own text reaches the page (ui/errors.py shows a request id instead).
        gr.mount_gradio_app(server, blocks, path=path, auth_dependency=auth.user_name if sessions else None,
                            show_error=False, max_file_size=settings.max_file_size, ssr_mode=False,
                            footer_links=["api", "gradio", "settings"],  # gradio has no Chinese for "Runs"
                            css=PAGE_CSS,
                            app_kwargs={"openapi_url": None})
    # Middleware added last runs first: headers and cross-site refusal, CORS, the login redirect, the gate.
    # Innermost: gradio's own widget texts in the page's language, whatever the browser's (ui/page_lang.py).
    server.add_middleware(PageLanguage, pages={"/": ctx.lang, f"/{other}/": other}, route_path=route_path)
    if sessions is not None:
        public = {"/healthz", "/login", "/logout", f"/{other}/login", f"/{other}/logout"}
        server.add_middleware(SessionGuard, user_of=auth.user_name)  # sessions and cached files: their user's only
        server.add_middleware(SessionGate, public=public, signed_in=lambda scope: auth.current(scope) is not None,
                              route_path=route_path)
        server.add_middleware(LoginRedirect, pages={"/", f"/{other}", f"/{other}/"},
                              signed_in=lambda scope: auth.current(scope) is not None)
    # With a CORSMiddleware on the parent app, gradio's own (which reflects any origin on a non-localhost host,
    # with credentials) steps aside; this one allows no other origin.
    server.add_middleware(CORSMiddleware, allow_origins=[])
    server.add_middleware(BrowserGuard)
    return server


def _set_cookie(response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")


def add_login_routes(server: FastAPI, prefix: str, lang: str, auth: _Auth) -> None:
    """/login at `prefix` too: gradio_client posts to `<its URL>/login`, e.g. /zh/login."""
    sessions, limiter = auth.sessions, auth.limiter

    def form(request: Request, next_page: str, status: int = 200, headers: dict | None = None, **flags):
        # A fresh nonce unless the browser has one (two open forms stay valid); the token is bound to it.
        nonce = request.cookies.get(CSRF_COOKIE) or ""
        if not 16 <= len(nonce) <= 64:
            nonce = secrets.token_urlsafe(24)
        response = HTMLResponse(login_page(lang, next_page, csrf=csrf_token(auth.secret, "login", nonce), **flags),
                                status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})
        _set_cookie(response, request, CSRF_COOKIE, nonce, SESSION_SECONDS)
        return response

    @server.get(f"{prefix}/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = ""):
        if sessions is None or auth.current(request.scope):
            return RedirectResponse(_up(route_path(request)) + _safe_next(next), status_code=303)
        return form(request, _safe_next(next))

    @server.post(f"{prefix}/login")
    def login(request: Request, username: str = Form(""), password: str = Form(""), next: str = Form(""),
              csrf: str = Form("")):
        # A plain def: FastAPI runs it in a worker thread, so the ~50 ms password hash does not stall the server.
        if sessions is None:  # logins are off: everyone is the local admin
            return JSONResponse({"success": True})
        next_page = _safe_next(next)
        # Login CSRF: another site's page must not sign a visitor in as someone else. Browsers send the form's
        # token (and BrowserGuard already refused foreign origins); scripts send no browser headers, need none.
        if from_browser(request.headers) and (
                cross_site(request.headers)
                or not csrf_ok(auth.secret, "login", request.cookies.get(CSRF_COOKIE), csrf)):
            return form(request, next_page, status=403, expired=True)
        # The socket's address, or X-Forwarded-For of a proxy named with --trusted-proxy (app.py).
        address = request.client.host if request.client else ""
        wait_s = limiter.retry_after(username, address)
        if wait_s:  # refused before the password hash: a guesser over the limit costs no CPU
            return form(request, next_page, status=429, headers={"Retry-After": str(wait_s)}, wait_s=wait_s)
        user = sessions.users.verify(username, password)
        if user is None:
            limiter.failed(username, address)
            return form(request, next_page, status=400, error=True)
        limiter.succeeded(username, address)
        sessions.revoke(request.cookies.get(COOKIE))  # signing in again replaces the browser's old session
        if "text/html" in request.headers.get("accept", ""):
            response = RedirectResponse(_up(route_path(request)) + next_page, status_code=303)
        else:  # gradio_client: a 2xx and the cookie
            response = JSONResponse({"success": True, "user": user.name, "role": user.role})
        token = sessions.issue(user.name, address, request.headers.get("user-agent", ""))
        _set_cookie(response, request, COOKIE, token, SESSION_SECONDS)
        return response



def add_logout_routes(server: FastAPI, prefix: str, lang: str, auth: _Auth) -> None:
    """/logout at `prefix`: GET asks, POST with the session's CSRF token (from the page's header) ends it."""

    @server.get(f"{prefix}/logout", response_class=HTMLResponse)
    def logout_form(request: Request):
        # A GET changes nothing (a link or an image on another site must not sign anyone out): it asks.
        token = auth.logout_token(request)
        if token is None:
            return RedirectResponse("login", status_code=303)
        return HTMLResponse(logout_page(lang, token), headers={"Cache-Control": "no-store"})

    @server.post(f"{prefix}/logout")
    def logout(request: Request, csrf: str = Form("")):
        found = auth.current(request.scope)
        if found is not None:
            if from_browser(request.headers) and not csrf_ok(auth.secret, "logout", found[0].id, csrf):
                return HTMLResponse(logout_page(lang, auth.logout_token(request), refused=True), status_code=403,
                                    headers={"Cache-Control": "no-store"})
            auth.sessions.store.revoke(found[0].id)
        response = RedirectResponse("login", status_code=303)  # the form beside it, in the same language
        response.delete_cookie(COOKIE, path="/")
        return response
