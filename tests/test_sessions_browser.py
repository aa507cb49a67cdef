"""Sessions in a real headless Chromium against the server (ui.server.create_server under uvicorn, in this process):
sign in through the form (its CSRF token and cookie), log out with the header's button (a POST), and the cookie
kept from before no longer opens the app; another site's page that posts our login form, or frames the app, gets
nothing."""

from __future__ import annotations

import threading
import time
from http.server import HTTPServer, SimpleHTTPRequestHandler

import httpx
import pytest
import uvicorn

from hosting.users import Account, User, UserStore, hash_password, write_users_file
from tests.server_fixtures import free_port
from ui.context import AppContext
from ui.server import ServerSettings, create_server


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("sessions-browser")
    hashed = hash_password("alice-pw")
    write_users_file(root / "users.yaml", {"alice": Account(User("alice", "member"), hashed, "test", hashed)})
    ctx = AppContext(data_dir=root, users=UserStore(root / "users.yaml", env={}))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_server(ctx, ServerSettings()), host="127.0.0.1", port=port,
                                           log_level="warning", proxy_headers=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 60
    while not server.started and time.time() < deadline:
        time.sleep(0.1)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def other_site(tmp_path_factory, server_url):
    """Another origin (another port): a page that posts our login form on load, and one that frames the app."""
    root = tmp_path_factory.mktemp("other-site")
    (root / "post.html").write_text(
        f'<form id="f" method="post" action="{server_url}login"><input name="username" value="alice">'
        '<input name="password" value="alice-pw"></form><script>document.getElementById("f").submit()</script>')
    (root / "frame.html").write_text(f'<iframe id="app" src="{server_url}login"></iframe>')
    handler = lambda *args: SimpleHTTPRequestHandler(*args, directory=str(root))  # noqa: E731
    http = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://localhost:{http.server_address[1]}/"
    http.shutdown()


def test_sign_in_log_out_and_the_old_cookie_is_refused(chromium, server_url):
    context = chromium.new_context()
    page = context.new_page()
    page.goto(server_url)
    page.locator("input[name=username]").fill("alice")
    page.locator("input[name=password]").fill("alice-pw")
    page.locator("button[type=submit]").click()
    button = page.locator("#log-out")
    button.wait_for(timeout=60_000)
    assert button.evaluate("b => b.tagName") == "BUTTON"  # a form's button, not a link
    cookie = next(c["value"] for c in context.cookies() if c["name"] == "medtune_session")
    assert httpx.get(server_url + "config", cookies={"medtune_session": cookie}).status_code == 200
    button.click()
    page.locator("input[name=username]").wait_for(timeout=30_000)  # back at the form
    assert httpx.get(server_url + "config", cookies={"medtune_session": cookie}).status_code == 401
    context.close()


def test_another_site_cannot_sign_a_visitor_in_or_frame_the_app(chromium, server_url, other_site):
    context = chromium.new_context()
    page = context.new_page()
    page.goto(other_site + "post.html")
    page.wait_for_load_state()
    assert not [c for c in context.cookies() if c["name"] == "medtune_session"]  # login CSRF refused
    page.goto(other_site + "frame.html")
    page.wait_for_timeout(1000)
    frame = page.frame_locator("#app")
    assert frame.locator("input[name=username]").count() == 0  # the browser refused to show it in a frame
    context.close()
