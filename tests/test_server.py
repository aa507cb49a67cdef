"""The real server over HTTP (`python app.py` and `docker/entrypoint.sh` as subprocesses): the login page and cookie,
gradio_client with `auth=`, the API without a login, /healthz, the other language at /zh/, the header, the warning
when the app is open to the network, and SIGTERM. The servers start at once to share the start-up time."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AuthenticationError

from hosting.users import Account, User, hash_password, write_users_file
from ui.strings import t

ROOT = Path(__file__).resolve().parent.parent
PASSWORDS = {"alice": "alice-pw", "gus": "gus-pw", "temp": "temp-pw"}
ROLES = {"alice": "member", "gus": "guest", "temp": "guest"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    """A server subprocess; its output goes to a log file read back in failure messages."""
    url: str
    proc: subprocess.Popen
    log: Path
    ready: bool = field(default=False)

    @classmethod
    def start(cls, cmd: list[str], env: dict, log: Path, port: int) -> Proc:
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        return cls(f"http://127.0.0.1:{port}/", proc, log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 240) -> Proc:
        deadline = time.time() + timeout
        while not self.ready:
            assert self.proc.poll() is None, f"server exited with {self.proc.returncode}:\n{self.output()[-3000:]}"
            assert time.time() < deadline, f"no /healthz in {timeout} s:\n{self.output()[-3000:]}"
            try:
                self.ready = httpx.get(self.url + "healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.3)
        return self

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def server_env(medtune_home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MEDTUNE_USERS", "MEDTUNE_ADMIN_PASSWORD", "MEDTUNE_USERS_FILE", "MEDTUNE_DATA_DIR",
                        "MEDTUNE_HOST", "MEDTUNE_PORT", "MEDTUNE_LANG", "MEDTUNE_MODEL", "MEDTUNE_ROOT_PATH")}
    return {**env, "MEDTUNE_HOME": str(medtune_home), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


@pytest.fixture(scope="module")
def servers(tmp_path_factory, medtune_home, demo_model):
    """Start all three at once: app.py with a users file, the Docker entrypoint with users from the environment
    (Chinese by default), and app.py on 0.0.0.0 with no login (stopped as soon as it has printed its warning)."""
    root = tmp_path_factory.mktemp("server")
    users = root / "users.yaml"
    write_users_file(users, {name: Account(User(name, ROLES[name]), h, "test", h)
                             for name, h in ((n, hash_password(p)) for n, p in PASSWORDS.items())})
    ports = [free_port() for _ in range(3)]
    started = {
        "app": Proc.start([sys.executable, "app.py", "--port", str(ports[0]), "--data-dir", str(root / "data"),
                           "--users", str(users)], server_env(medtune_home), root / "app.log", ports[0]),
        "docker": Proc.start(["docker/entrypoint.sh", "--port", str(ports[1])],
                             server_env(medtune_home, PYTHON=sys.executable, MEDTUNE_DATA_DIR=str(root / "volume"),
                                        MEDTUNE_ADMIN_PASSWORD="root-pw", MEDTUNE_USERS="bob:member:bob-pw",
                                        MEDTUNE_LANG="zh"),
                             root / "docker.log", ports[1]),
        "open": Proc.start([sys.executable, "app.py", "--host", "0.0.0.0", "--port", str(ports[2]),
                            "--data-dir", str(root / "open-data")], server_env(medtune_home), root / "open.log",
                           ports[2]),
    }
    deadline = time.time() + 120
    while "NO LOGIN" not in started["open"].output():  # printed before the UI is even imported: stop it then
        if started["open"].proc.poll() is not None or time.time() > deadline:
            break
        time.sleep(0.2)
    started["open"].stop()
    yield SimpleNamespace(users_file=users, data_dir=root / "data", **started)
    for proc in started.values():
        proc.stop()


@pytest.fixture(scope="module")
def server(servers) -> Proc:
    return servers.app.wait_ready()


def login(url: str, name: str, password: str | None = None, next_page: str = "", browser: bool = False):
    return httpx.post(url + "login", data={"username": name, "password": password or PASSWORDS[name],
                                           "next": next_page}, headers={"Accept": "text/html"} if browser else {})


def test_healthz_needs_no_login(server):
    response = httpx.get(server.url + "healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_pages_redirect_to_login_without_a_session(server):
    response = httpx.get(server.url)
    assert response.status_code == 303 and response.headers["location"] == "login?next="
    response = httpx.get(server.url + "zh/")
    assert response.status_code == 303 and response.headers["location"] == "login?next=zh%2F"
    form = httpx.get(server.url + "login?next=zh%2F")
    assert form.status_code == 200 and 'name="username"' in form.text and 'name="password"' in form.text
    assert "Sign in" in form.text and "登录" in form.text and 'value="zh/"' in form.text
    assert 'value=""' in httpx.get(server.url + "login?next=%2F%2Fevil.example").text  # no open redirect


def test_wrong_password_shows_the_form_again_with_400(server):
    response = login(server.url, "alice", "wrong")
    assert response.status_code == 400 and "medtune_session" not in response.headers.get("set-cookie", "")
    assert 'name="username"' in response.text and t("server.bad_login") in response.text
    assert t("server.bad_login", "zh") in response.text
    assert login(server.url, "nobody", "x").status_code == 400


def test_browser_login_sets_cookie_and_returns_to_the_page(server):
    response = login(server.url, "alice", next_page="zh/", browser=True)
    assert response.status_code == 303 and response.headers["location"] == "./zh/"
    cookie = response.cookies["medtune_session"]
    assert "HttpOnly" in response.headers["set-cookie"] and "SameSite=lax" in response.headers["set-cookie"]
    page = httpx.get(server.url + "zh/", cookies={"medtune_session": cookie})
    assert page.status_code == 200 and "医疗模型工作台" in page.text and "lang-switch" in page.text
    assert '\\"../\\"' in page.text  # the zh page links back to the English one, relatively
    page = httpx.get(server.url, cookies={"medtune_session": cookie})
    assert page.status_code == 200 and '\\"zh/\\"' in page.text and "Medical model workbench" in page.text
    assert "open-warning" not in page.text  # logins are on
    assert page.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in page.headers[
        "content-security-policy"]
    asked = httpx.get(server.url + "logout", cookies={"medtune_session": cookie})  # a GET only asks
    assert asked.status_code == 200 and 'method="post"' in asked.text
    token = re.search(r'name="csrf" value="([^"]+)"', asked.text).group(1)
    logout = httpx.post(server.url + "logout", data={"csrf": token}, cookies={"medtune_session": cookie},
                        headers={"Origin": server.url.rstrip("/"), "Sec-Fetch-Site": "same-origin"})
    assert logout.status_code == 303 and logout.headers["location"] == "login"
    assert 'medtune_session=""' in logout.headers["set-cookie"]
    # The old cookie (kept by a copy, or a stolen one) no longer works.
    assert httpx.get(server.url + "config", cookies={"medtune_session": cookie}).status_code == 401
    assert httpx.get(server.url + "zh/", cookies={"medtune_session": cookie}).status_code == 303


def test_two_logins_in_one_second_get_different_sessions_and_foreign_origins_are_refused(server):
    first, second = login(server.url, "gus"), login(server.url, "gus")
    assert first.cookies["medtune_session"] != second.cookies["medtune_session"]
    foreign = httpx.post(server.url + "login", data={"username": "gus", "password": PASSWORDS["gus"]},
                         headers={"Origin": "http://evil.example", "Accept": "text/html"})
    assert foreign.status_code == 403 and "medtune_session" not in foreign.headers.get("set-cookie", "")
    reflected = httpx.get(server.url + "config", headers={"Origin": "http://localhost:1"},
                          cookies={"medtune_session": first.cookies["medtune_session"]})
    assert reflected.status_code == 200 and "access-control-allow-origin" not in reflected.headers


def test_streaming_and_housekeeping_routes_need_a_session(server):
    for path in ("gradio_api/heartbeat/abc", "gradio_api/queue/data?session_hash=abc", "openapi.json",
                 "gradio_api/app_id", "zh/gradio_api/info"):
        assert httpx.get(server.url + path, timeout=10).status_code == 401, path
    for path in ("gradio_api/cancel", "gradio_api/reset"):
        assert httpx.post(server.url + path, json={}, timeout=10).status_code == 401, path


def test_gradio_client_with_auth_scores_a_submission(server):
    client = Client(server.url, auth=("alice", PASSWORDS["alice"]), verbose=False)
    summary, *_ = client.predict("mc_sample", None, None, "auto", "", api_name="/score_submission")
    assert "Score 62.50" in summary
    # the Chinese app takes the same values (keys; the labels are only shown)
    client = Client(server.url + "zh/", auth=("gus", PASSWORDS["gus"]), verbose=False)
    summary, *_ = client.predict("mc_sample", None, None, "auto", "", api_name="/score_submission")
    assert "62.50" in summary and "选择题" in summary


def test_api_without_login_is_401(server):
    with pytest.raises(AuthenticationError):
        Client(server.url, verbose=False)
    assert httpx.get(server.url + "config").status_code == 401
    assert httpx.post(server.url + "gradio_api/queue/join", json={}).status_code == 401
    forged = {"medtune_session": "v1.YWxpY2U.9999999999.x"}
    assert httpx.get(server.url + "zh/config", cookies=forged).status_code == 401
    with pytest.raises(ValueError, match="Could not login"):
        Client(server.url, auth=("alice", "wrong"), verbose=False)


def test_removed_user_is_signed_out(server, servers):
    cookie = login(server.url, "temp").cookies["medtune_session"]
    assert httpx.get(server.url + "config", cookies={"medtune_session": cookie}).status_code == 200
    done = subprocess.run([sys.executable, "-m", "hosting.users", "remove", "temp", "--file",
                           str(servers.users_file)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert httpx.get(server.url + "config", cookies={"medtune_session": cookie}).status_code == 401
    assert httpx.get(server.url, cookies={"medtune_session": cookie}).status_code == 303
    with sqlite3.connect(servers.data_dir / "sessions.sqlite") as db:  # and the session is gone, not just refused
        assert db.execute("SELECT count(*) FROM sessions WHERE user = 'temp'").fetchone() == (0,)
    key = servers.data_dir / "secret_key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_open_to_network_without_login_warns_loudly(servers):
    output = servers.open.output()
    assert "WARNING: listening on 0.0.0.0" in output and "python -m hosting.users add NAME --role admin" in output


def test_header_links_user_role_and_warning_banner(tmp_path):
    from ui.context import AppContext
    from ui.layout import build_app, header_bar

    users = SimpleNamespace(user=lambda name: User(name, "member"))
    ctx = AppContext(lang="zh", users=users, data_dir=tmp_path)
    bar = header_bar(ctx, "../", "../logout", SimpleNamespace(username="<alice>"))
    assert 'href="../"' in bar and ">English<" in bar and 'href="../logout"' in bar
    assert "&lt;alice&gt;" in bar and "成员" in bar and t("server.log_out", "zh") in bar
    assert "logout" not in header_bar(AppContext(), "zh/", "logout")  # no login: only the language link
    blocks = build_app(AppContext(data_dir=tmp_path), switch_href="zh/", open_warning=True)
    assert "open-warning" in {getattr(block, "elem_id", None) for block in blocks.blocks.values()}


def test_root_path_behind_a_proxy(tmp_path):
    """uvicorn's --root-path (app.py passes MEDTUNE_ROOT_PATH) prefixes every path; a proxy strips it again."""
    from fastapi.testclient import TestClient

    from hosting.users import UserStore
    from ui.context import AppContext
    from ui.server import ServerSettings, create_server

    h = hash_password("pw")
    write_users_file(tmp_path / "users.yaml", {"alice": Account(User("alice", "member"), h, "test", h)})
    ctx = AppContext(data_dir=tmp_path, users=UserStore(tmp_path / "users.yaml", env={}))
    with TestClient(create_server(ctx, ServerSettings()), root_path="/medtune", follow_redirects=False) as client:
        assert client.get("/medtune/zh/").headers["location"] == "login?next=zh%2F"
        response = client.post("/medtune/zh/login", data={"username": "alice", "password": "pw", "next": "zh/"},
                               headers={"Accept": "text/html"})
        assert response.status_code == 303 and response.headers["location"] == "../zh/"
        config = client.get("/medtune/zh/config").json()  # the client keeps the cookie
        assert config["root"].endswith("/medtune/zh") and config["username"] == "alice"


def test_docker_entrypoint_serves_and_stops_on_sigterm(servers):
    docker = servers.docker.wait_ready()
    assert httpx.get(docker.url + "healthz").json() == {"status": "ok"}
    assert httpx.get(docker.url).headers["location"] == "login?next="
    form = httpx.get(docker.url + "login")
    assert form.status_code == 200 and form.text.index("登录") < form.text.index("Sign in")  # MEDTUNE_LANG=zh
    assert login(docker.url, "admin", "root-pw").json() == {"success": True, "user": "admin", "role": "admin"}
    assert login(docker.url, "bob", "bob-pw").status_code == 200
    assert (Path(docker.proc.args[0]).name == "entrypoint.sh" and "WARNING" not in docker.output())
    started = time.time()
    # exec'd, so SIGTERM reaches uvicorn itself: it shuts down, then exits by the signal it caught (as uvicorn does)
    assert docker.stop() in (0, -signal.SIGTERM) and time.time() - started < 15


def test_entrypoint_refuses_an_unwritable_data_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = subprocess.run(["docker/entrypoint.sh"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "MEDTUNE_DATA_DIR": str(blocker / "data"), "PYTHON": "false"})
    assert done.returncode == 1 and f"the data directory {blocker / 'data'} is not writable" in done.stderr
