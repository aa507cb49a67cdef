"""hosting/login_limit.py: failed logins counted per user name and per address in a sliding window, a success
clearing the name, bounded memory; and the real server refusing with 429 and Retry-After before the password check."""

from __future__ import annotations

import threading

import httpx
import pytest

from hosting.login_limit import MAX_FAILURES_PER_USER, WINDOW_S, LoginLimiter
from tests.server_fixtures import password, start_server, write_users
from ui.strings import t


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(**limits) -> tuple[LoginLimiter, FakeClock]:
    clock = FakeClock()
    return LoginLimiter(**{"max_per_user": 3, "max_per_address": 5, "window_s": 60, **limits}, clock=clock), clock


def test_user_name_is_limited_and_the_window_slides():
    limits, clock = limiter()
    for _ in range(2):
        limits.failed("alice", "10.0.0.1")
        clock.now += 10
    assert limits.retry_after("alice", "10.0.0.1") == 0  # 2 of 3
    limits.failed("alice", "10.0.0.2")  # from elsewhere: still alice's third failure
    # Failures at 1000, 1010, 1020: below the limit again when the one at 1000 leaves the window, at 1060.
    assert limits.retry_after("alice", "10.0.0.3") == 40
    assert limits.retry_after(" alice ", "10.0.0.3") == 40  # the name as the store reads it
    assert limits.retry_after("bob", "10.0.0.1") == 0  # other names are not held back
    clock.now = 1059.5
    assert limits.retry_after("alice", "10.0.0.3") == 1  # rounded up: Retry-After never says 0 too early
    clock.now = 1060
    assert limits.retry_after("alice", "10.0.0.3") == 0
    limits.failed("alice", "10.0.0.3")  # 1010, 1020, 1060: held until 1010 leaves, at 1070
    assert limits.retry_after("alice", "10.0.0.3") == 10
    clock.now = 1200
    assert limits.retry_after("alice", "10.0.0.3") == 0 and limits.tracked() == (0, 0)  # all forgotten


def test_address_is_limited_across_user_names():
    limits, clock = limiter()
    for i in range(5):
        limits.failed(f"user{i}", "10.0.0.1")
        clock.now += 1
    assert limits.retry_after("someone", "10.0.0.1") == 55  # now 1005; the first failure (1000) leaves at 1060
    assert limits.retry_after("someone", "10.0.0.2") == 0
    limits.succeeded("user0")  # a success clears the name only, not the address
    assert limits.retry_after("user0", "10.0.0.1") == 55


def test_success_clears_the_user_names_failures():
    limits, clock = limiter()
    for _ in range(2):
        limits.failed("alice", "10.0.0.1")
    limits.succeeded("alice")
    for _ in range(2):
        limits.failed("alice", "10.0.0.1")
    assert limits.retry_after("alice", "10.0.0.9") == 0  # 2 since the success, not 4
    limits.failed("alice", "10.0.0.1")
    assert limits.retry_after("alice", "10.0.0.9") == 60


def test_memory_is_bounded():
    limits, clock = limiter(max_keys=100)
    for i in range(1000):
        limits.failed(f"user{i}", f"10.0.{i // 256}.{i % 256}")
    assert limits.tracked() == (100, 100)
    limits.failed("x" * 100_000, "10.9.9.9")  # a huge name is kept at the longest possible name's length
    assert max(map(len, limits._users.times)) == 64
    for _ in range(50):  # one name's times are capped at its limit, however often it fails
        limits.failed("alice", "10.0.0.1")
    assert len(limits._users.times["alice"]) == 3 and len(limits._addresses.times["10.0.0.1"]) == 5
    clock.now += 61
    limits.retry_after("bob", "10.0.0.1")  # expired entries are dropped on the next call
    assert limits.tracked() == (0, 0)


def test_threads_share_one_count():
    limits, _ = limiter(max_per_user=1000, max_per_address=1000)
    threads = [threading.Thread(target=lambda: [limits.failed("alice", "10.0.0.1") for _ in range(100)])
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(limits._users.times["alice"]) == 800


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
    def login(name: str, pw: str, path: str = "login") -> httpx.Response:
        return httpx.post(f"{server.url}/{path}", data={"username": name, "password": pw},
                          headers={"Accept": "text/html"})

    for i in range(MAX_FAILURES_PER_USER):  # the English and Chinese forms share one count
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
