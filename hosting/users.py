"""Logins for a shared server: who may sign in, their passwords, and the signed session cookie. No gradio.

Users come from a YAML users file (edited with `python -m hosting.users add|remove|list`) and, for Docker, from
environment variables: MEDTUNE_ADMIN_PASSWORD (user "admin", role admin) and MEDTUNE_USERS ("alice:member:pw1,...").

    users:
      alice: {role: member, password: "scrypt$16384$8$1$<salt>$<hash>"}

Passwords are stored as stdlib scrypt hashes with a random salt, in a self-describing string. Sessions are rows on
the server (hosting/sessions.py), keyed with `<data_dir>/secret_key` and bound to the user's current password:
removing a user or changing the password ends their sessions; `python -m hosting.users sessions|revoke` lists and
ends them.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import os
import re
import secrets
import sys
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from hosting.roles import ROLES, User
from hosting.sessions import SESSION_SECONDS, SESSIONS_FILE, SessionStore  # noqa: F401 (SESSION_SECONDS: re-exported)
from safeio.atomic import write_text
from safeio.cli import ExitStatus, HelpFormatter, default_data_dir, exit_epilog
from safeio.problems import Problem

PROJECT_ROOT = Path(__file__).resolve().parent.parent
USERS_FILE_ENV = "MEDTUNE_USERS_FILE"
ADMIN_PASSWORD_ENV = "MEDTUNE_ADMIN_PASSWORD"
USERS_ENV = "MEDTUNE_USERS"
ADMIN_NAME = "admin"
NAME_RE = re.compile(r"^[\w.@-]{1,64}$")  # no ':' or ',' (the MEDTUNE_USERS separators), no spaces
SECRET_KEY_FILE = "secret_key"

# scrypt at n=2**14, r=8: 16 MiB and ~50 ms per check, which makes guessing slow without making logins slow.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2 ** 14, 8, 1


class UsersError(ValueError):
    """A users file or MEDTUNE_USERS entry that cannot be used; the message names the file, user and field, and
    `problem` (when set) says the same as data: the project's one problem type (file, line, field, code, params)."""

    def __init__(self, message: str, problem: Problem | None = None):
        super().__init__(message)
        self.problem = problem


def _error(message: str, where: str, code: str, field: str = "", line: int | None = None, **params) -> UsersError:
    return UsersError(message, Problem(line, params.get("user"), code, message, file=where, field=field,
                                       params=params))


# --- passwords ---

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash`: the parameters travel with the hash, so they can be raised later."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _parse_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    """The parts of a hash string, or ValueError saying what is wrong with it."""
    parts = encoded.split("$") if isinstance(encoded, str) else []
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("is not a password hash (expected scrypt$N$r$p$salt$hash, as written by "
                         "`python -m hosting.users add`; plain-text passwords are not accepted)")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        raise ValueError("is a damaged scrypt hash (bad number or base64)") from None
    if n < 2 or n & (n - 1) or n > 2 ** 20 or not 1 <= r <= 32 or not 1 <= p <= 16 or not salt or len(digest) < 16:
        raise ValueError(f"has scrypt parameters out of range (N={n}, r={r}, p={p})")
    return n, r, p, salt, digest


def check_password(password: str, encoded: str) -> bool:
    """Whether `password` matches the hash; the comparison takes the same time wherever the bytes differ."""
    try:
        n, r, p, salt, digest = _parse_hash(encoded)
    except ValueError:
        return False
    candidate = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=len(digest),
                               maxmem=256 * n * r * p + (1 << 20))
    return hmac.compare_digest(candidate, digest)


_DUMMY_HASH = hash_password(secrets.token_hex(8))  # checked for unknown names, so they take as long as known ones


# --- the users file ---

@dataclass(frozen=True)
class Account:
    user: User
    password_hash: str
    source: str  # the users file's path, or the environment variable it came from
    fingerprint: str  # what a session is bound to: changes whenever the password does


def check_name(name: object, where: str) -> str:
    if not isinstance(name, str):
        raise _error(f"{where}: user name {name!r} must be text (quote it in YAML: \"{name}\")", where,
                     "user_name_not_text", "users", user=str(name))
    if not NAME_RE.match(name):
        raise _error(f"{where}: user name {name!r} may only have letters, digits and . _ @ - (1 to 64 characters)",
                     where, "bad_user_name", "users", user=name)
    return name


def check_role(role: object, where: str, name: str) -> str:
    if role not in ROLES:
        raise _error(f"{where}: user {name!r}: field 'role': {role!r} is not one of {', '.join(ROLES)}", where,
                     "unknown_role", "role", user=name, value=str(role), allowed=", ".join(ROLES))
    return role


def read_users_file(path: Path) -> dict[str, Account]:
    """The accounts in a users file; UsersError naming the file, user and field for anything wrong."""
    where = f"users file {path}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _error(f"{where} does not exist (create it with "
                     f"`python -m hosting.users add NAME --role admin --file {path}`)", where, "missing_file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(f"{where} cannot be read: {exc}", where, "unreadable", reason=str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)  # where the YAML parser stopped, 0-based
        raise _error(f"{where} is not valid YAML: {exc}", where, "bad_yaml", line=mark.line + 1 if mark else None,
                     reason=str(exc)) from None
    if data is None:
        return {}
    if not isinstance(data, dict) or set(data) - {"users"}:
        found = repr(sorted(map(str, data))) if isinstance(data, dict) else type(data).__name__
        raise _error(f"{where}: expected one top-level key 'users' (a mapping of user name to {{role, password}}), "
                     f"found {found}", where, "bad_users_top", found=found)
    users = data.get("users") or {}
    if not isinstance(users, dict):
        raise _error(f"{where}: field 'users' must be a mapping of user name to {{role, password}}, "
                     f"not {type(users).__name__}", where, "bad_users_field", "users", found=type(users).__name__)
    accounts = {}
    for name, entry in users.items():
        name = check_name(name, where)
        if not isinstance(entry, dict):
            raise _error(f"{where}: user {name!r} must be a mapping with fields 'role' and 'password'", where,
                         "bad_user_entry", name, user=name)
        unknown = sorted(set(map(str, entry)) - {"role", "password"})
        if unknown:
            raise _error(f"{where}: user {name!r}: unknown field {unknown[0]!r} (allowed: role, password)", where,
                         "unknown_field", unknown[0], user=name)
        for field in ("role", "password"):
            if field not in entry:
                raise _error(f"{where}: user {name!r}: field {field!r} is missing", where, "missing_field", field,
                             user=name)
        role = check_role(entry["role"], where, name)
        try:
            _parse_hash(entry["password"])
        except ValueError as exc:
            raise _error(f"{where}: user {name!r}: field 'password' {exc}", where, "bad_password_hash", "password",
                         user=name, reason=str(exc)) from None
        accounts[name] = Account(User(name, role), entry["password"], str(path), entry["password"])
    return accounts


def write_users_file(path: Path, accounts: Mapping[str, Account]) -> None:
    """Write atomically (temp file, fsync, rename), readable by the owner only: it holds password hashes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"users": {name: {"role": a.user.role, "password": a.password_hash} for name, a in accounts.items()}}
    text = ("# medtune logins; edit with `python -m hosting.users add|remove|list`\n"
            + yaml.safe_dump(data, sort_keys=True, allow_unicode=True))
    write_text(path, text, mode=None, durable=True)  # mode None: mkstemp's 0600


def env_accounts(env: Mapping[str, str]) -> dict[str, Account]:
    """Accounts from MEDTUNE_ADMIN_PASSWORD and MEDTUNE_USERS; messages never repeat a password."""
    accounts = {}
    for i, item in enumerate((env.get(USERS_ENV) or "").split(","), start=1):
        if not item.strip():
            continue
        parts = item.strip().split(":", 2)
        where = f"{USERS_ENV} entry {i}"
        if len(parts) != 3:
            raise _error(f"{where}: expected NAME:ROLE:PASSWORD (entries separated by commas)", where,
                         "bad_users_entry")
        name = check_name(parts[0], where)
        role = check_role(parts[1], where, name)
        if not parts[2]:
            raise _error(f"{where}: user {name!r}: field 'password' is empty", where, "empty_password", "password",
                         user=name)
        accounts[name] = _env_account(name, role, parts[2], USERS_ENV)
    if env.get(ADMIN_PASSWORD_ENV):
        accounts[ADMIN_NAME] = _env_account(ADMIN_NAME, "admin", env[ADMIN_PASSWORD_ENV], ADMIN_PASSWORD_ENV)
    return accounts


def _env_account(name: str, role: str, password: str, source: str) -> Account:
    # The hash has a fresh salt each start, so the session binding uses a stable digest of the password instead
    # (it only ever enters the HMAC, never a cookie): env users stay signed in across restarts too.
    fingerprint = hashlib.sha256(f"medtune-env\n{name}\n{password}".encode()).hexdigest()
    return Account(User(name, role), hash_password(password), source, fingerprint)


class UserStore:
    """Who may sign in. The users file is re-read when it changes, so `python -m hosting.users` edits apply to a
    running server (a removed user is signed out at their next request); a file broken mid-edit keeps the last
    good users and prints why."""

    def __init__(self, file: Path | None = None, env: Mapping[str, str] | None = None):
        self.file = Path(file) if file is not None else None
        self._env = env_accounts(os.environ if env is None else env)
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._listeners: list = []
        self._file_accounts: dict[str, Account] = {}
        if self.file is not None:
            self._file_accounts = read_users_file(self.file)
            self._stamp = self._file_stamp()

    @classmethod
    def from_settings(cls, file: Path | None, env: Mapping[str, str] | None = None) -> UserStore | None:
        """The store, or None when no login is configured (no users file, no user in the environment)."""
        env = os.environ if env is None else env
        if file is None and not env.get(ADMIN_PASSWORD_ENV) and not (env.get(USERS_ENV) or "").strip():
            return None
        store = cls(file, env)
        if not store.names():
            raise _error(f"users file {file} has no users: nobody could sign in (add one with "
                         f"`python -m hosting.users add NAME --role admin --file {file}`)", f"users file {file}",
                         "no_users")
        return store

    def _file_stamp(self) -> tuple | None:
        try:
            st = self.file.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _refresh(self) -> None:
        if self.file is None:
            return
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                self._file_accounts = read_users_file(self.file)
            except UsersError as exc:
                print(f"medtune: keeping the previous users: {exc}", file=sys.stderr, flush=True)
                self._stamp = stamp
                return
            self._stamp = stamp
            accounts = {**self._file_accounts, **self._env}
            for listener in self._listeners:  # e.g. end the sessions of removed users (hosting.sessions.Sessions)
                listener(accounts)

    def add_listener(self, listener) -> None:
        """Call `listener(accounts)` whenever a changed users file has been read."""
        self._listeners.append(listener)

    def accounts(self) -> dict[str, Account]:
        self._refresh()
        return {**self._file_accounts, **self._env}  # the environment wins: it is what Docker was started with

    def names(self) -> list[str]:
        return sorted(self.accounts())

    def account(self, name: str) -> Account | None:
        return self.accounts().get(name)

    def user(self, name: str) -> User | None:
        account = self.account(name)
        return account.user if account else None

    def verify(self, name: str, password: str) -> User | None:
        account = self.account((name or "").strip())
        ok = check_password(password or "", account.password_hash if account else _DUMMY_HASH)
        return account.user if ok and account else None


# --- sessions ---

def load_secret(data_dir: Path) -> bytes:
    """The signing key in <data_dir>/secret_key, created (mode 0600) on first start."""
    path = Path(data_dir) / SECRET_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 32:
        raise UsersError(f"secret key file {path} is damaged (expected 64 hex characters); delete it to make a "
                         "new one (everyone will have to sign in again)")
    return key


# --- command line ---

def default_users_file(env: Mapping[str, str] | None = None) -> Path:
    """MEDTUNE_USERS_FILE, else <data dir>/users.yaml (data dir: MEDTUNE_DATA_DIR, else ./runs as the app)."""
    env = os.environ if env is None else env
    if env.get(USERS_FILE_ENV):
        return Path(env[USERS_FILE_ENV])
    return default_data_dir(env) / "users.yaml"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():  # getpass would fall back to a plain read and end in EOFError
        raise UsersError("no terminal to ask for the password: give it on one line of stdin with --password-stdin, "
                         "e.g. printf '%s\\n' \"$PW\" | python -m hosting.users add NAME --role ROLE --password-stdin")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat: ") != password:
            raise UsersError("the two passwords differ")
    if not password:
        raise UsersError("the password is empty")
    return password


def sessions_file(args: argparse.Namespace, users_file: Path) -> Path:
    """The app's sessions database: --data-dir, else beside the users file when one is there (the default
    layout), else the default data dir (MEDTUNE_DATA_DIR, else ./runs, as the app)."""
    if args.data_dir is not None:
        return args.data_dir / SESSIONS_FILE
    if (users_file.parent / SESSIONS_FILE).exists():
        return users_file.parent / SESSIONS_FILE
    return default_data_dir() / SESSIONS_FILE


def _sessions(n: int) -> str:
    return f"{n} session" + "s" * (n != 1)


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hosting.users", description="Manage the app's logins.",
                                     formatter_class=HelpFormatter,
                                     epilog=exit_epilog(ExitStatus.OK, ExitStatus.INTERNAL, ExitStatus.USAGE,
                                                        ExitStatus.INPUT_MALFORMED))
    parser.add_argument("--file", type=Path, default=None,
                        help="users file (default: $MEDTUNE_USERS_FILE, else <data dir>/users.yaml)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the app's data dir, which holds sessions.sqlite (default: beside the users file if "
                             "it is there, else $MEDTUNE_DATA_DIR, else ./runs)")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a user, or change a user's role and password (ends their sessions)")
    add.add_argument("name", help="user name")
    add.add_argument("--role", choices=ROLES, required=True, help="what the user may do: " + " | ".join(ROLES))
    add.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    remove = commands.add_parser("remove", help="remove a user and end their sessions")
    remove.add_argument("name", help="user name")
    listing = commands.add_parser("list", help="list users and roles")
    sessions = commands.add_parser("sessions", help="list live sessions: id, user, signed in, last seen, expiry, "
                                                    "address, browser")
    sessions.add_argument("--user", help="only this user's sessions")
    revoke = commands.add_parser("revoke", help="end sessions at once (the running app included)")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("session_id", nargs="?", help="a session id from `sessions`")
    which.add_argument("--user", help="every session of this user")
    which.add_argument("--all", action="store_true", help="every session: everyone signs in again")
    for sub in (add, remove, listing, sessions, revoke):  # --file and --data-dir are accepted after the command too
        sub.formatter_class = HelpFormatter
        sub.add_argument("--file", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sub.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _session_commands(args: argparse.Namespace, path: Path) -> int:
    db = sessions_file(args, path)
    if not db.exists():
        where = f"no sessions database at {db} (nobody has signed in there yet; --data-dir names the app's)"
        if args.command == "revoke":
            raise UsersError(where)
        print(where[0].upper() + where[1:] + ".")
        return ExitStatus.OK
    store = SessionStore(db)
    if args.command == "sessions":
        rows = store.list(args.user)
        if not rows:
            print(f"No live sessions in {db}.")
        for s in rows:
            agent = "".join(c if c.isprintable() else "?" for c in s.user_agent)  # no terminal escapes from it
            print(f"{s.id}\t{s.user}\t{_when(s.created)}\t{_when(s.last_seen)}\t{_when(s.expires)}\t"
                  f"{s.address}\t{agent}")
        return ExitStatus.OK
    if args.all:
        print(f"Ended {_sessions(store.revoke_all())} in {db}.")
    elif args.user:
        print(f"Ended {_sessions(store.revoke_user(check_name(args.user, 'command line')))} of {args.user} in {db}.")
    elif store.revoke(args.session_id):
        print(f"Ended session {args.session_id}.")
    else:
        raise UsersError(f"no live session {args.session_id!r} in {db} (see `python -m hosting.users sessions`)")
    return ExitStatus.OK


def _end_sessions_of(args: argparse.Namespace, path: Path, name: str) -> str:
    """End a removed user's or changed password's sessions now (the app would at their next request anyway)."""
    db = sessions_file(args, path)
    if not db.exists():
        return ""
    ended = SessionStore(db).revoke_user(name)
    return f" Ended {_sessions(ended)}." if ended else ""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The app's rule: --file, else $MEDTUNE_USERS_FILE, else <data dir>/users.yaml (--data-dir, $MEDTUNE_DATA_DIR,
    # ./runs)
    path = args.file or (args.data_dir / "users.yaml" if args.data_dir and not os.environ.get(USERS_FILE_ENV)
                         else default_users_file())
    try:
        if args.command in ("sessions", "revoke"):
            return _session_commands(args, path)
        try:
            accounts = read_users_file(path) if path.exists() else {}
        except UsersError as exc:  # the file itself: its line and field are named
            print(f"error: {exc}", file=sys.stderr)
            return ExitStatus.INPUT_MALFORMED
        if args.command == "list":
            if not accounts:
                print(f"No users in {path}.")
            for name, account in sorted(accounts.items()):
                print(f"{name}\t{account.user.role}")
            for name, account in sorted(env_accounts(os.environ).items()):
                print(f"{name}\t{account.user.role}\t(from ${account.source})")
            return ExitStatus.OK
        name = check_name(args.name, "command line")
        if args.command == "remove":
            if name not in accounts:
                raise UsersError(f"no user {name!r} in {path}")
            del accounts[name]
            write_users_file(path, accounts)
            print(f"Removed {name} from {path}.{_end_sessions_of(args, path, name)}")
            return ExitStatus.OK
        password = _read_password(args.password_stdin)
        existed = name in accounts
        hashed = hash_password(password)
        accounts[name] = Account(User(name, args.role), hashed, str(path), hashed)
        write_users_file(path, accounts)
        ended = _end_sessions_of(args, path, name) if existed else ""
        print(f"{'Updated' if existed else 'Added'} {name} ({args.role}) in {path}.{ended}")
        return ExitStatus.OK
    except UsersError as exc:  # a user or session that does not exist, a bad name or password
        print(f"error: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    except (OSError, sqlite3.Error) as exc:  # the file or the sessions database cannot be written
        print(f"error: {exc}", file=sys.stderr)
        return ExitStatus.INTERNAL


if __name__ == "__main__":
    sys.exit(main())
