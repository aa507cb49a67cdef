"""The server's gates, in process (FastAPI's TestClient over ui.server.create_server, the same app uvicorn serves):
routes x who asks (no session, guest, member, admin, a logged-out, expired, forged or admin-revoked session), cross-
site requests, CSRF tokens on login and logout, framing and CORS headers. The real server (`python app.py`) is
covered in tests/test_server.py."""

from __future__ import annotations

import re
import sqlite3

import pytest
from fastapi.testclient import TestClient

from hosting.users import Account, User, UserStore, hash_password, write_users_file
from ui.context import AppContext
from ui.server import ServerSettings, create_server
from ui.strings import t

ROLES = {"gus": "guest", "alice": "member", "root": "admin"}
HOST = "http://testserver"
FOREIGN = "http://evil.example"

# Every one answers 401 without a session; with one, the gate lets it through to gradio (whatever gradio answers).
# The streaming routes (heartbeat, queue/data) are asked of the real server, with a time-out (tests/test_server.py).
GATED_GET = ["/openapi.json", "/zh/openapi.json", "/config", "/zh/config", "/gradio_api/info",
             "/gradio_api/openapi.json", "/gradio_api/app_id", "/zh/gradio_api/app_id", "/gradio_api/startup-events",
             "/gradio_api/upload_progress", "/gradio_api/file=/etc/hostname", "/gradio_api/deep_link",
             "/gradio_api/user", "/gradio_api/login_check", "/favicon.ico", "/theme.css", "/manifest.json",
             "/gradio_api/monitoring"]
GATED_POST = ["/gradio_api/cancel", "/gradio_api/reset", "/zh/gradio_api/reset", "/gradio_api/queue/join",
              "/gradio_api/upload", "/gradio_api/run/score_submission", "/gradio_api/call/score_submission", "/"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("security")
    hashed = {name: hash_password(f"{name}-pw") for name in ROLES}
    write_users_file(root / "users.yaml", {name: Account(User(name, role), hashed[name], "test", hashed[name])
                                           for name, role in ROLES.items()})
    ctx = AppContext(data_dir=root, users=UserStore(root / "users.yaml", env={}))
    with TestClient(create_server(ctx, ServerSettings()), follow_redirects=False) as client:
        client.root = root
        yield client


def sign_in(server, name: str) -> str:
    """A session cookie, signed in as a script would (no browser headers)."""
    response = server.post("/login", data={"username": name, "password": f"{name}-pw"}, cookies={})
    assert response.status_code == 200, response.text
    server.cookies.clear()
    return response.cookies["medtune_session"]


def form_token(html_text: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html_text).group(1)


def identities(server) -> dict[str, str | None]:
    """Who asks -> the session cookie sent (None: no cookie)."""
    logged_out, expired, revoked = (sign_in(server, "alice") for _ in range(3))
    bar = server.get("/logout", cookies={"medtune_session": logged_out})
    assert server.post("/logout", data={"csrf": form_token(bar.text)}, headers={"Origin": HOST},
                       cookies={"medtune_session": logged_out}).status_code == 303
    with sqlite3.connect(server.root / "sessions.sqlite") as db:  # expired: as it would be 7 days later
        ids = [row[0] for row in db.execute("SELECT id FROM sessions ORDER BY created DESC")]
    newest_two = ids[:2]  # `revoked` was issued last, `expired` just before
    with sqlite3.connect(server.root / "sessions.sqlite") as db:
        db.execute("UPDATE sessions SET expires = 1 WHERE id = ?", (newest_two[1],))
    from hosting.sessions import SessionStore

    assert SessionStore(server.root / "sessions.sqlite").revoke(newest_two[0])  # the admin's CLI, another process
    return {"no session": None, "forged": "s2." + "A" * 43, "old v1 token": "v1.YWxpY2U.9999999999.x",
            "logged out": logged_out, "expired": expired, "revoked by admin": revoked,
            **{ROLES[name]: sign_in(server, name) for name in ROLES}}


def test_routes_by_who_asks(server):
    who = identities(server)
    failures = []
    for identity, cookie in who.items():
        cookies = {"medtune_session": cookie} if cookie else {}
        signed_in = identity in ROLES.values()
        asks = [("GET", path) for path in GATED_GET] + [("POST", path) for path in GATED_POST]
        for method, path in asks:
            status = server.request(method, path, cookies=cookies, json={}).status_code
            if (status == 401) == signed_in:
                failures.append(f"{identity} {method} {path}: {status}")
        for page in ("/", "/zh/"):  # pages: the login form, or the app
            status = server.get(page, cookies=cookies).status_code
            if status != (200 if signed_in else 303):
                failures.append(f"{identity} GET {page}: {status}")
        assert server.get("/healthz", cookies=cookies).json() == {"status": "ok"}
        assert server.get("/login", cookies=cookies).status_code == (303 if signed_in else 200)
    assert not failures, "\n".join(failures)
    assert server.get("/openapi.json", cookies={"medtune_session": who["admin"]}).status_code == 404  # none at all


def test_every_response_forbids_framing_and_sniffing(server):
    cookie = sign_in(server, "alice")
    for method, path, cookies in (("GET", "/login", {}), ("GET", "/config", {}), ("GET", "/healthz", {}),
                                  ("GET", "/", {}), ("GET", "/zh/", {"medtune_session": cookie}),
                                  ("GET", "/config", {"medtune_session": cookie}), ("POST", "/login", {})):
        headers = server.request(method, path, cookies=cookies).headers
        assert headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "same-origin", path


def test_foreign_origins_get_no_cors_and_cannot_change_state(server):
    cookie = {"medtune_session": sign_in(server, "alice")}
    for origin in (FOREIGN, "http://localhost:9999", "http://127.0.0.1:1", "null"):
        response = server.get("/config", headers={"Origin": origin}, cookies=cookie)
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers, origin
        assert "access-control-allow-credentials" not in response.headers
        preflight = server.options("/gradio_api/queue/join", headers={"Origin": origin,
                                                                      "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in preflight.headers, origin
        for path in ("/gradio_api/queue/join", "/gradio_api/upload", "/gradio_api/cancel", "/login", "/logout"):
            refused = server.post(path, headers={"Origin": origin}, cookies=cookie, json={})
            assert refused.status_code == 403, (origin, path)
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site", "Origin": HOST},
                    {"Referer": FOREIGN + "/page"}):
        assert server.post("/gradio_api/reset", headers=headers, cookies=cookie, json={}).status_code == 403
    # The app's own page posting to itself passes the guard.
    same = server.post("/gradio_api/reset", headers={"Origin": HOST, "Sec-Fetch-Site": "same-origin"},
                       cookies=cookie, json={"event_id": "x"})
    assert same.status_code == 200


def test_login_csrf(server):
    server.cookies.clear()
    data = {"username": "alice", "password": "alice-pw", "next": ""}
    # Another site's page posting the attacker's password into the visitor's browser: refused, no cookie set.
    for headers in ({"Origin": FOREIGN}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        refused = server.post("/login", data=data, headers={"Accept": "text/html", **headers})
        assert refused.status_code == 403 and "medtune_session" not in refused.headers.get("set-cookie", "")
    # A same-origin browser post without the form's token (or with another form's) is refused too, with a fresh form.
    browser = {"Accept": "text/html", "Origin": HOST, "Sec-Fetch-Site": "same-origin"}
    refused = server.post("/login", data={**data, "csrf": "forged"}, headers=browser)
    assert refused.status_code == 403 and t("server.form_expired") in refused.text
    assert t("server.form_expired", "zh") in refused.text and "medtune_session" not in refused.cookies
    form = server.get("/zh/login")
    assert form.headers["cache-control"] == "no-store"
    assert "HttpOnly" in form.headers["set-cookie"] and "SameSite=lax" in form.headers["set-cookie"]
    other_browser = TestClient(server.app, follow_redirects=False)
    assert other_browser.post("/login", data={**data, "csrf": form_token(form.text)},
                              headers=browser).status_code == 403  # the token is bound to this browser's nonce
    signed_in = server.post("/zh/login", data={**data, "next": "zh/", "csrf": form_token(form.text)},
                            headers=browser)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "../zh/"
    assert "HttpOnly" in signed_in.headers["set-cookie"] and "SameSite=lax" in signed_in.headers["set-cookie"]
    assert "Secure" not in signed_in.headers["set-cookie"]  # plain http here; behind https the cookie is Secure
    server.cookies.clear()
    # Scripts (gradio_client posts username and password only, no browser headers) need no token.
    assert server.post("/login", data={"username": "alice", "password": "alice-pw"}).json()["user"] == "alice"
    server.cookies.clear()


def test_logout_is_a_post_with_the_sessions_token(server):
    cookie = {"medtune_session": sign_in(server, "alice")}
    browser = {"Origin": HOST, "Sec-Fetch-Site": "same-origin"}
    asked = server.get("/logout", cookies=cookie)  # a GET (a link, an <img> elsewhere) only asks
    assert asked.status_code == 200 and 'method="post"' in asked.text and 'id="log-out"' in asked.text
    assert server.get("/config", cookies=cookie).status_code == 200
    other = sign_in(server, "alice")
    other_token = form_token(server.get("/logout", cookies={"medtune_session": other}).text)
    for token in ("", "forged", other_token):  # another session's token does not log this one out
        refused = server.post("/logout", data={"csrf": token}, headers=browser, cookies=cookie)
        assert refused.status_code == 403 and t("server.form_expired") in refused.text
    assert server.get("/config", cookies=cookie).status_code == 200
    done = server.post("/zh/logout", data={"csrf": form_token(asked.text)}, headers=browser, cookies=cookie)
    assert done.status_code == 303 and done.headers["location"] == "login"
    assert 'medtune_session=""' in done.headers["set-cookie"]
    assert server.get("/config", cookies=cookie).status_code == 401  # the old cookie no longer works
    assert server.get("/config", cookies={"medtune_session": other}).status_code == 200  # the other session does
    assert server.post("/logout", cookies={"medtune_session": other}).status_code == 303  # a script: no token
    assert server.get("/config", cookies={"medtune_session": other}).status_code == 401
    assert server.get("/logout").headers["location"] == "login"  # nothing to log out of


def test_header_bar_logs_out_with_a_post(server):
    from types import SimpleNamespace

    from ui.layout import header_bar

    cookie = sign_in(server, "alice")
    ctx = AppContext(users=SimpleNamespace(user=lambda name: User(name, "member")))
    bar = header_bar(ctx, "zh/", "logout", SimpleNamespace(username="alice"), logout_token="tok<en>")
    assert '<form method="post" action="logout"' in bar and 'value="tok&lt;en&gt;"' in bar and "<a id=\"log-out\"" \
        not in bar
    # The token the page is given is the one /logout accepts for this session.
    token = form_token(server.get("/logout", cookies={"medtune_session": cookie}).text)
    assert server.post("/logout", data={"csrf": token}, headers={"Origin": HOST},
                       cookies={"medtune_session": cookie}).status_code == 303
