"""hosting/login_limit.py: failed logins counted per (user name, address), per address and per user name in a sliding
window, a success clearing its pair, bounded memory; and the real server refusing with 429 and Retry-After before the
password check, with X-Forwarded-For not believed unless --trusted-proxy names the proxy."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import httpx
import pytest

from hosting.login_limit import MAX_FAILURES_PER_PAIR, WINDOW_S, LoginLimiter
from tests.server_fixtures import password, start_server, write_users
from ui.strings import t


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(**limits) -> tuple[LoginLimiter, FakeClock]:
    clock = FakeClock()
    limits = {"max_per_pair": 3, "max_per_address": 5, "max_per_user": 8, "window_s": 60, **limits}
    return LoginLimiter(**limits, clock=clock), clock


def test_user_name_and_address_pair_is_limited_and_the_window_slides():
    limits, clock = limiter()
    for _ in range(2):
        limits.failed("alice", "10.0.0.1")
        clock.now += 10
    assert limits.retry_after("alice", "10.0.0.1") == 0  # 2 of 3
    limits.failed(" alice ", "10.0.0.1")  # the name as the store reads it: the third
    # Failures at 1000, 1010, 1020: below the limit again when the one at 1000 leaves the window, at 1060.
    assert limits.retry_after("alice", "10.0.0.1") == 40
    assert limits.retry_after("alice", "10.0.0.2") == 0  # the real alice elsewhere (the admin too) is not locked out
    assert limits.retry_after("bob", "10.0.0.1") == 0  # other names from there are not held back by this count
    clock.now = 1059.5
    assert limits.retry_after("alice", "10.0.0.1") == 1  # rounded up: Retry-After never says 0 too early
    clock.now = 1060
    assert limits.retry_after("alice", "10.0.0.1") == 0
    limits.failed("alice", "10.0.0.1")  # 1010, 1020, 1060: held until 1010 leaves, at 1070
    assert limits.retry_after("alice", "10.0.0.1") == 10
    clock.now = 1200
    assert limits.retry_after("alice", "10.0.0.1") == 0 and limits.tracked() == (0, 0, 0)  # all forgotten


def test_address_is_the_backstop_across_user_names():
    limits, clock = limiter()
    for i in range(5):
        limits.failed(f"user{i}", "10.0.0.1")
        clock.now += 1
    assert limits.retry_after("someone", "10.0.0.1") == 55  # now 1005; the first failure (1000) leaves at 1060
    assert limits.retry_after("someone", "10.0.0.2") == 0
    limits.succeeded("user0", "10.0.0.1")  # a success clears its pair only, not the address
    assert limits.retry_after("user0", "10.0.0.1") == 55


def test_user_name_is_capped_across_addresses():
    limits, clock = limiter()
    for i in range(8):  # 8 addresses, one guess each: no pair and no address is over its limit
        limits.failed("alice", f"10.0.1.{i}")
    assert limits.retry_after("alice", "10.0.2.1") == 60  # but alice's name is, everywhere
    assert limits.retry_after("bob", "10.0.2.1") == 0


def test_success_clears_its_pair_only():
    limits, clock = limiter()
    for _ in range(2):
        limits.failed("alice", "10.0.0.1")
        limits.failed("alice", "10.0.0.9")
    limits.succeeded("alice", "10.0.0.1")
    limits.failed("alice", "10.0.0.1")
    assert limits.retry_after("alice", "10.0.0.1") == 0  # 1 since the success, not 3
    limits.failed("alice", "10.0.0.9")
    assert limits.retry_after("alice", "10.0.0.9") == 60  # a success at home does not reset a guesser elsewhere


def test_memory_is_bounded():
    limits, clock = limiter(max_keys=100)
    for i in range(1000):
        limits.failed(f"user{i}", f"10.0.{i // 256}.{i % 256}")
    assert limits.tracked() == (100, 100, 100)
    limits.failed("x" * 100_000, "10.9.9.9")  # a huge name is kept at the longest possible name's length
    assert max(map(len, limits._users.times)) == 64
    for _ in range(50):  # one key's times are capped at its limit, however often it fails
        limits.failed("alice", "10.0.0.1")
    assert len(limits._pairs.times["alice\n10.0.0.1"]) == 3 and len(limits._addresses.times["10.0.0.1"]) == 5
    assert len(limits._users.times["alice"]) == 8
    clock.now += 61
    limits.retry_after("bob", "10.0.0.1")  # expired entries are dropped on the next call
    assert limits.tracked() == (0, 0, 0)


def test_threads_share_one_count():
    limits, _ = limiter(max_per_pair=1000, max_per_address=1000, max_per_user=1000)
    threads = [threading.Thread(target=lambda: [limits.failed("alice", "10.0.0.1") for _ in range(100)])
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(limits._pairs.times["alice\n10.0.0.1"]) == 800


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="login limits must be positive"):
        LoginLimiter(max_per_user=0)


@pytest.fixture(scope="module")
def server(tmp_path_factory, medtune_home, demo_model):
    root = tmp_path_factory.mktemp("login-limit")
    users = write_users(root / "users.yaml", {"alice": "member", "bob": "member"})
    server = start_server(root / "runs", medtune_home, "--users", str(users))
    yield server
    server.stop()


def test_real_server_refuses_with_429_before_the_password_check(server):
    def login(name: str, pw: str, path: str = "login", **headers: str) -> httpx.Response:
        return httpx.post(f"{server.url}/{path}", data={"username": name, "password": pw},
                          headers={"Accept": "text/html", **headers})

    for i in range(MAX_FAILURES_PER_PAIR):  # the English and Chinese forms share one count
        response = login("alice", "wrong", "zh/login" if i % 2 else "login")
        assert response.status_code == 400 and t("server.bad_login") in response.text
    refused = login("alice", "wrong")
    assert refused.status_code == 429 and "medtune_session" not in refused.headers.get("set-cookie", "")
    wait_s = int(refused.headers["Retry-After"])
    assert 0 < wait_s <= WINDOW_S
    assert 'name="username"' in refused.text  # the same form, with how long to wait in both languages
    assert t("server.login_limited").format(seconds=wait_s) in refused.text
    assert t("server.login_limited", "zh").format(seconds=wait_s) in refused.text
    assert login("alice", password("alice")).status_code == 429  # the right password waits too
    assert login("alice", password("alice"), "zh/login").status_code == 429
    # Another name from the same address is below both limits: it signs in, and that leaves alice's count alone.
    assert login("bob", password("bob")).status_code == 303
    assert login("alice", password("alice")).status_code == 429
    # A client on the same machine as the server (as a local reverse proxy would be) cannot choose its address:
    # without --trusted-proxy, X-Forwarded-For is not believed (uvicorn's default would believe it from 127.0.0.1).
    for spoofed in ("203.0.113.7", "198.51.100.1, 127.0.0.1"):
        assert login("alice", password("alice"), **{"X-Forwarded-For": spoofed}).status_code == 429


def test_trusted_proxy_flag_sets_what_uvicorn_believes(monkeypatch, tmp_path):
    import argparse

    import uvicorn

    import app

    monkeypatch.delenv("MEDTUNE_TRUSTED_PROXY", raising=False)
    assert app.parse_args([]).trusted_proxy == ""
    assert app.parse_args(["--trusted-proxy", " 127.0.0.1, 10.1.2.3/8"]).trusted_proxy == "127.0.0.1,10.0.0.0/8"
    monkeypatch.setenv("MEDTUNE_TRUSTED_PROXY", "::1")
    assert app.parse_args([]).trusted_proxy == "::1"
    with pytest.raises(argparse.ArgumentTypeError, match="'proxy.example' is not an IP address"):
        app.proxy_list("proxy.example")
    monkeypatch.delenv("MEDTUNE_TRUSTED_PROXY")
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda server, **kwargs: calls.append(kwargs))
    monkeypatch.setattr("ui.server.create_server", lambda ctx, settings: None)
    for flags, expected in (([], (False, None)), (["--trusted-proxy", "10.0.0.5"], (True, "10.0.0.5"))):
        args = app.parse_args(["--data-dir", str(tmp_path), *flags])
        app.serve(SimpleNamespace(lang="en", users=None), args, False)
        assert (calls[-1]["proxy_headers"], calls[-1]["forwarded_allow_ips"]) == expected

