"""The real server (`python app.py`) as a subprocess with a users file, for the end-to-end and multi-user tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
USERS = {"admin": "admin", "alice": "member", "bob": "member", "gus": "guest"}  # name -> role; password f"{name}-pw"


def password(name: str) -> str:
    return f"{name}-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_users(path: Path, users: dict[str, str] = USERS) -> Path:
    for name, role in users.items():
        subprocess.run([sys.executable, "-m", "hosting.users", "add", name, "--role", role, "--file", str(path),
                        "--password-stdin"], input=password(name) + "\n", text=True, check=True, cwd=ROOT,
                       capture_output=True)
    return path


@dataclass
class Server:
    url: str
    data_dir: Path
    log: Path
    proc: subprocess.Popen

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_server(data_dir: Path, medtune_home: Path, *flags: str, timeout_s: float = 180) -> Server:
    """Start app.py on a free port and wait until /healthz answers; its output goes to data_dir/../server-N.log."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"server-{port}.log"
    env = {**os.environ, "MEDTUNE_HOME": str(medtune_home), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--data-dir", str(data_dir), *flags],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return Server(url, data_dir, log, proc)
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"app.py did not answer /healthz in {timeout_s} s:\n{log.read_text(errors='replace')[-3000:]}")
