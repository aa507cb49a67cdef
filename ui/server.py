"""The web server of a shared demo: our login, logout and health routes around the Gradio app in both languages.

    /            the app in the default language      /zh/ (or /en/)   the same app in the other language
    /login       GET: the sign-in form; POST: username, password (browsers and gradio_client's `auth=`)
    /logout      ends the session                     /healthz         {"status": "ok"}, no login needed

Failed logins are limited per user name and per client address (hosting.login_limit): over the limit, /login answers
429 with Retry-After before checking the password. The address is the socket's, or the X-Forwarded-For of a proxy
uvicorn trusts (by default one on 127.0.0.1 / ::1; uvicorn's FORWARDED_ALLOW_IPS changes that).

The login cookie holds a token signed by hosting.users.Sessions, checked against the users on every request (Gradio's
`auth_dependency`), so a user removed from the users file is signed out at once. Links and redirects are relative,
so the app also works behind a reverse proxy that serves it under a sub-path.
"""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import gradio as gr
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from hosting.login_limit import LoginLimiter
from hosting.users import SESSION_SECONDS, Sessions, load_secret
from ui.context import AppContext, with_services
from ui.guard import SessionGuard
from ui.layout import build_app
from ui.strings import t

COOKIE = "medtune_session"


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


def login_page(lang: str, next_page: str = "", error: bool = False, wait_s: int = 0) -> str:
    """A small form in both languages, the page's language first; posts to `login` beside it. `error`: the last
    password was wrong; `wait_s`: too many failures, try again in that many seconds."""
    langs = (lang, "en" if lang == "zh" else "zh")

    def both(key: str, **values) -> str:
        return " · ".join(html.escape(t(key, x).format(**values) if values else t(key, x)) for x in langs)

    message = (both("server.login_limited", seconds=wait_s) if wait_s else both("server.bad_login") if error
               else "")
    message = f'<p class="error" role="alert">{message}</p>' if message else ""
    return f"""<!doctype html>
<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{both("server.login_title")}</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;background:#f6f7f9;display:flex;
justify-content:center;padding-top:10vh}}form{{background:#fff;padding:2em;border-radius:8px;width:22em;
box-shadow:0 1px 4px #0002}}label{{display:block;margin-top:1em}}input{{width:100%;padding:.5em;box-sizing:border-box}}
button{{margin-top:1.5em;width:100%;padding:.6em}}.error{{color:#b00020}}.note{{color:#555;font-size:.9em}}</style>
</head><body><form method="post" action="login">
<h1>{html.escape(t("app.title", lang))}</h1><h2>{both("server.login_title")}</h2>{message}
<label>{both("server.username")}<input name="username" autocomplete="username" required autofocus></label>
<label>{both("server.password")}<input name="password" type="password" autocomplete="current-password"
 required></label><input type="hidden" name="next" value="{html.escape(next_page)}">
<button type="submit">{both("server.sign_in")}</button><p class="note">{both("server.login_note")}</p>
</form></body></html>"""


class LoginRedirect:
    """Send a browser that asks for an app page without a valid session to the login form (plain ASGI, so the
    app's streaming responses pass through untouched)."""

    def __init__(self, app, pages: set[str], signed_in):
        self.app, self.pages, self.signed_in = app, pages, signed_in

    async def __call__(self, scope, receive, send):
        if (scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and route_path(scope) in self.pages
                and not self.signed_in(Request(scope))):
            query = scope.get("query_string", b"").decode("latin-1")
            next_page = route_path(scope)[1:] + (f"?{query}" if query else "")
            # Relative: "/" -> /login, "/zh/" -> /zh/login (the form in that language); works under a proxy prefix.
            response = RedirectResponse(f"login?next={quote(next_page, safe='')}", status_code=303)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_server(ctx: AppContext, settings: ServerSettings = ServerSettings()) -> FastAPI:
    """The FastAPI app to serve with uvicorn: our routes, then the app in the other language, then the default."""
    other = "zh" if ctx.lang == "en" else "en"
    ctx = with_services(ctx)  # one job scheduler for both languages' apps
    sessions = Sessions(load_secret(ctx.data_dir), ctx.users) if ctx.users is not None else None
    limiter = LoginLimiter()  # one for both languages' /login, or each would allow the limit again

    def session_user(request: Request) -> str | None:
        user = sessions.user(request.cookies.get(COOKIE)) if sessions else None
        return user.name if user else None

    server = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @server.get("/healthz")
    def healthz():
        return {"status": "ok"}

    for prefix, lang in (("", ctx.lang), (f"/{other}", other)):
        add_login_routes(server, prefix, lang, sessions, session_user, limiter)

    for path, lang in ((f"/{other}", other), ("/", ctx.lang)):  # the sub-path first: "/" would catch everything
        page_ctx = dataclasses.replace(ctx, lang=lang)
        up = "" if path == "/" else "../"
        blocks = build_app(page_ctx, switch_href=f"{other}/" if path == "/" else "../", logout_href=f"{up}logout",
                           open_warning=settings.open_warning)
        blocks.queue(default_concurrency_limit=settings.concurrency)
        # No root_path here: uvicorn's (app.py) puts it in every request's scope, where Gradio finds it, and a
        # Gradio root_path on a sub-mount would break that mount's routing.
        gr.mount_gradio_app(server, blocks, path=path, auth_dependency=session_user if sessions else None,
                            show_error=True, max_file_size=settings.max_file_size, ssr_mode=False)
    if sessions is not None:
        server.add_middleware(LoginRedirect, pages={"/", f"/{other}", f"/{other}/"},
                              signed_in=lambda request: session_user(request) is not None)
        server.add_middleware(SessionGuard, user_of=session_user)  # sessions and cached files: their user's only
    return server


def add_login_routes(server: FastAPI, prefix: str, lang: str, sessions: Sessions | None, session_user,
                     limiter: LoginLimiter) -> None:
    """/login and /logout at `prefix` too: gradio_client posts to `<its URL>/login`, e.g. /zh/login."""

    @server.get(f"{prefix}/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = ""):
        if sessions is None or session_user(request):
            return RedirectResponse(_up(route_path(request)) + _safe_next(next), status_code=303)
        return HTMLResponse(login_page(lang, _safe_next(next)))

    @server.post(f"{prefix}/login")
    def login(request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("")):
        # A plain def: FastAPI runs it in a worker thread, so the ~50 ms password hash does not stall the server.
        browser = "text/html" in request.headers.get("accept", "")
        if sessions is None:  # logins are off: everyone is the local admin
            return JSONResponse({"success": True})
        # The socket's address, or the X-Forwarded-For of a proxy uvicorn trusts (its proxy headers middleware).
        address = request.client.host if request.client else ""
        wait_s = limiter.retry_after(username, address)
        if wait_s:  # refused before the password hash: a guesser over the limit costs no CPU
            return HTMLResponse(login_page(lang, _safe_next(next), wait_s=wait_s), status_code=429,
                                headers={"Retry-After": str(wait_s)})
        user = sessions.store.verify(username, password)
        if user is None:
            limiter.failed(username, address)
            return HTMLResponse(login_page(lang, _safe_next(next), error=True), status_code=400)
        limiter.succeeded(username)
        if browser:
            response = RedirectResponse(_up(route_path(request)) + _safe_next(next), status_code=303)
        else:  # gradio_client: a 2xx and the cookie
            response = JSONResponse({"success": True, "user": user.name, "role": user.role})
        response.set_cookie(COOKIE, sessions.issue(user.name), max_age=SESSION_SECONDS, httponly=True,
                            samesite="lax", secure=request.url.scheme == "https", path="/")
        return response

    @server.get(f"{prefix}/logout")
    def logout(request: Request):
        response = RedirectResponse("login", status_code=303)  # the form beside it, in the same language
        response.delete_cookie(COOKIE, path="/")
        return response
