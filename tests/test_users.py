"""hosting/users.py and hosting/sessions.py: password hashes, the users file and its messages, users from the
environment, the CLI (users and sessions), and the sessions kept on the server."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hosting.roles import User
from hosting.sessions import TOUCH_S, Sessions, SessionStore
from hosting.users import UsersError, UserStore, check_password, hash_password, load_secret, read_users_file

ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def alice_hash() -> str:
    return hash_password("pw1")


@pytest.fixture
def users_file(tmp_path, alice_hash) -> Path:
    return write(tmp_path / "users.yaml", f"users:\n  alice: {{role: member, password: '{alice_hash}'}}\n")


def test_hash_is_salted_self_describing_and_checked(alice_hash):
    assert alice_hash.startswith("scrypt$16384$8$1$") and alice_hash.count("$") == 5
    assert hash_password("pw1") != alice_hash  # a fresh salt every time
    assert check_password("pw1", alice_hash)
    assert not check_password("pw2", alice_hash) and not check_password("", alice_hash)
    assert not check_password("pw1", "pw1") and not check_password("pw1", "scrypt$x$8$1$aa$bb")


def test_verify_and_user(users_file):
    store = UserStore(users_file, env={})
    assert store.verify("alice", "pw1") == User("alice", "member")
    assert store.verify(" alice ", "pw1") == User("alice", "member")
    assert store.verify("alice", "wrong") is None and store.verify("nobody", "pw1") is None
    assert store.user("alice") == User("alice", "member") and store.user("nobody") is None


@pytest.mark.parametrize("text, expected", [
    ("users: [alice]\n", "field 'users' must be a mapping"),
    ("people: {}\n", "expected one top-level key 'users'"),
    ("users:\n  alice: {role: boss, password: 'x'}\n", "user 'alice': field 'role': 'boss' is not one of"),
    ("users:\n  alice: {role: member}\n", "user 'alice': field 'password' is missing"),
    ("users:\n  alice: {role: member, password: secret}\n", "user 'alice': field 'password' is not a password hash"),
    ("users:\n  alice: {role: member, pasword: x}\n", "user 'alice': unknown field 'pasword'"),
    ("users:\n  alice: member\n", "user 'alice' must be a mapping with fields 'role' and 'password'"),
    ("users:\n  yes: {role: member}\n", "user name True must be text"),
    ("users:\n  'al ice': {role: member}\n", "user name 'al ice' may only have"),
    ("users: {alice: [\n", "is not valid YAML"),
])
def test_bad_users_file_names_file_user_and_field(tmp_path, text, expected):
    path = write(tmp_path / "users.yaml", text)
    with pytest.raises(UsersError) as info:
        read_users_file(path)
    assert f"users file {path}" in str(info.value) and expected in str(info.value)


def test_missing_or_empty_users_file(tmp_path):
    with pytest.raises(UsersError, match="does not exist.*hosting.users add"):
        UserStore.from_settings(tmp_path / "none.yaml", env={})
    with pytest.raises(UsersError, match="has no users"):
        UserStore.from_settings(write(tmp_path / "empty.yaml", "users: {}\n"), env={})
    assert UserStore.from_settings(None, env={}) is None  # no login configured


def test_users_from_environment():
    env = {"MEDTUNE_ADMIN_PASSWORD": "root-pw", "MEDTUNE_USERS": "alice:member:pw:1, bob:guest:pw2,"}
    store = UserStore.from_settings(None, env=env)
    assert store.names() == ["admin", "alice", "bob"]
    assert store.verify("admin", "root-pw") == User("admin", "admin")
    assert store.verify("alice", "pw:1") == User("alice", "member")  # the password may hold ':'
    assert store.verify("bob", "pw2") == User("bob", "guest")
    with pytest.raises(UsersError, match="MEDTUNE_USERS entry 1: user 'carol': field 'role': 'boss'") as info:
        UserStore.from_settings(None, env={"MEDTUNE_USERS": "carol:boss:hunter2"})
    assert "hunter2" not in str(info.value)  # messages never repeat a password
    with pytest.raises(UsersError, match="MEDTUNE_USERS entry 2: expected NAME:ROLE:PASSWORD"):
        UserStore.from_settings(None, env={"MEDTUNE_USERS": "a:guest:x,b-no-role"})


def test_environment_wins_over_file(users_file):
    store = UserStore(users_file, env={"MEDTUNE_USERS": "alice:guest:env-pw"})
    assert store.verify("alice", "env-pw") == User("alice", "guest") and store.verify("alice", "pw1") is None


def test_store_follows_file_edits_and_keeps_last_good_users(users_file, capsys):
    store = UserStore(users_file, env={})
    bob = hash_password("pw2")
    write(users_file, f"users:\n  bob: {{role: guest, password: '{bob}'}}\n")
    assert store.user("alice") is None and store.verify("bob", "pw2") == User("bob", "guest")
    write(users_file, "users: {bob: [\n")  # broken mid-edit
    assert store.user("bob") == User("bob", "guest")
    assert "keeping the previous users" in capsys.readouterr().err


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hosting.users", *args], input=stdin, text=True, cwd=ROOT,
                          capture_output=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith("MEDTUNE_USER")})


def test_cli_add_list_remove(tmp_path):
    path = tmp_path / "sub" / "users.yaml"
    # Spaces and "!" never occur in a hash (base64 and "$"), so finding the password in the file can only be a leak;
    # a short alphanumeric one turns up inside a random hash now and then.
    done = run_cli("add", "alice", "--role", "member", "--file", str(path), "--password-stdin", stdin="pw one!\n")
    assert done.returncode == 0 and "Added alice (member)" in done.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds password hashes
    assert "pw one!" not in path.read_text() and UserStore(path, env={}).verify("alice", "pw one!")
    done = run_cli("--file", str(path), "add", "bob", "--role", "guest", "--password-stdin", stdin="pw2\n")
    assert done.returncode == 0
    done = run_cli("add", "alice", "--role", "admin", "--file", str(path), "--password-stdin", stdin="new\n")
    assert "Updated alice (admin)" in done.stdout
    assert run_cli("list", "--file", str(path)).stdout.split() == ["alice", "admin", "bob", "guest"]
    store = UserStore(path, env={})
    assert store.verify("alice", "new") == User("alice", "admin") and store.verify("bob", "pw2")
    assert run_cli("remove", "bob", "--file", str(path)).returncode == 0
    assert store.user("bob") is None
    done = run_cli("remove", "bob", "--file", str(path))
    assert done.returncode == 2 and f"no user 'bob' in {path}" in done.stderr
    done = run_cli("add", "carol", "--role", "guest", "--file", str(path), "--password-stdin", stdin="\n")
    assert done.returncode == 2 and "the password is empty" in done.stderr
    assert run_cli("add", "dave", "--role", "boss", "--file", str(path)).returncode == 2  # argparse: bad role
    assert not list(path.parent.glob(".users.yaml.*"))  # atomic writes leave no temp files


def test_secret_key_is_created_private_and_kept(tmp_path):
    key = load_secret(tmp_path)
    path = tmp_path / "secret_key"
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(tmp_path) == key  # the same after a restart: sessions survive it
    path.write_text("short\n")
    with pytest.raises(UsersError, match="secret_key is damaged"):
        load_secret(tmp_path)


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def sessions_for(users_file: Path, clock=None, **limits) -> Sessions:
    store = UserStore(users_file, env={})
    kwargs = {"clock": clock} if clock else {}
    return Sessions(SessionStore(users_file.parent / "sessions.sqlite", b"k" * 32, **limits, **kwargs), store)


def test_session_tokens_are_random_stored_hashed_and_expire(users_file):
    clock = Clock()
    sessions = sessions_for(users_file, clock, max_age=3600)
    first, second = sessions.issue("alice", "10.0.0.1", "Firefox"), sessions.issue("alice", "10.0.0.2", "curl")
    assert first != second  # two sign-ins in the same second
    assert sessions.user(first) == sessions.user(second) == User("alice", "member")
    db = (users_file.parent / "sessions.sqlite").read_bytes()
    assert first.encode() not in db and first[3:].encode() not in db  # only a keyed hash is kept
    rows = sessions.store.list("alice")
    assert {(r.address, r.user_agent) for r in rows} == {("10.0.0.1", "Firefox"), ("10.0.0.2", "curl")}
    again = Sessions(SessionStore(users_file.parent / "sessions.sqlite", b"k" * 32, clock=clock),
                     UserStore(users_file, env={}))
    assert again.user(first) == User("alice", "member")  # a restart (another process) with the same key
    other_key = Sessions(SessionStore(users_file.parent / "sessions.sqlite", b"x" * 32, clock=clock),
                         UserStore(users_file, env={}))
    assert other_key.user(first) is None  # a new secret key signs everyone out
    for forged in ("", "garbage", first[:-1] + ("A" if first[-1] != "A" else "B"), "v1.YWxpY2U.9999999999.x",
                   "s2." + "x" * 200):
        assert sessions.user(forged) is None, forged
    clock.now += TOUCH_S + 1
    assert sessions.user(first)
    assert max(r.last_seen for r in sessions.store.list("alice")) == clock.now  # seen again
    clock.now += 3600
    assert sessions.user(first) is None and sessions.store.list() == []  # expired


def test_session_revoked_by_logout_admin_password_change_and_removal(users_file):
    sessions = sessions_for(users_file)
    token, other = sessions.issue("alice"), sessions.issue("alice")
    assert sessions.revoke(token) and sessions.user(token) is None and sessions.user(other)  # log-out: this one
    by_admin = sessions.store.list("alice")[0].id
    assert sessions.store.revoke(by_admin) and sessions.user(other) is None
    token = sessions.issue("alice")
    text = users_file.read_text()
    write(users_file, text.replace("role: member", "role: guest"))
    assert sessions.user(token) == User("alice", "guest")  # the role is read fresh on every request
    write(users_file, f"users:\n  alice: {{role: member, password: '{hash_password('changed')}'}}\n")
    assert sessions.users.accounts() and sessions.store.list() == []  # a new password: ended when the file is read
    assert sessions.user(token) is None
    token = sessions.issue("alice")
    write(users_file, "users: {}\n")
    assert sessions.user(token) is None and sessions.store.list() == []  # removed: ended
    write(users_file, f"users:\n  alice: {{role: member, password: '{hash_password('changed')}'}}\n")
    assert sessions.user(token) is None  # and stays ended when the user comes back


def test_sessions_per_user_are_capped_and_threads_share_the_store(users_file):
    import threading

    sessions = sessions_for(users_file, max_per_user=5)
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.extend(sessions.issue("alice") for _ in range(5)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 20 and len(sessions.store.list("alice")) == 5
    assert sum(sessions.user(token) is not None for token in tokens) == 5


def test_cli_lists_and_revokes_sessions(tmp_path, alice_hash):
    path = write(tmp_path / "users.yaml", f"users:\n  alice: {{role: member, password: '{alice_hash}'}}\n"
                                           f"  bob: {{role: guest, password: '{alice_hash}'}}\n")
    done = run_cli("revoke", "--all", "--file", str(path))
    assert done.returncode == 2 and "no sessions database" in done.stderr
    sessions = sessions_for(path)
    tokens = {name: [sessions.issue(name, "10.1.2.3", "agent\x1b[31m") for _ in range(2)] for name in ("alice", "bob")}
    listing = run_cli("sessions", "--file", str(path))
    assert listing.returncode == 0 and listing.stdout.count("alice") == 2 and listing.stdout.count("bob") == 2
    assert "10.1.2.3" in listing.stdout and "\x1b" not in listing.stdout  # no terminal escapes from a user agent
    one = run_cli("sessions", "--user", "bob", "--file", str(path)).stdout.split()[0]
    assert run_cli("revoke", one, "--file", str(path)).returncode == 0
    assert sum(sessions.user(token) is not None for token in tokens["bob"]) == 1
    done = run_cli("revoke", one, "--data-dir", str(tmp_path))
    assert done.returncode == 2 and "no live session" in done.stderr
    assert "Ended 2 sessions of alice" in run_cli("revoke", "--user", "alice", "--file", str(path)).stdout
    assert all(sessions.user(token) is None for token in tokens["alice"])
    token = sessions.issue("alice")
    done = run_cli("add", "alice", "--role", "member", "--file", str(path), "--password-stdin", stdin="new pw\n")
    assert "Ended 1 session" in done.stdout and sessions.user(token) is None  # a new password: ended at once
    assert "Ended 1 session" in run_cli("remove", "bob", "--file", str(path)).stdout
    sessions.issue("alice")
    assert "Ended 1 session" in run_cli("revoke", "--all", "--file", str(path)).stdout
    assert "No live sessions" in run_cli("sessions", "--file", str(path)).stdout
