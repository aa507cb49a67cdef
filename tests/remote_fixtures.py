"""Real HTTP servers for the remote-model tests: a tiny scripted OpenAI-compatible server (for failures a real engine
will not produce on demand), and `transformers serve` on the demo model (a real engine), each on a free port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scripted(BaseHTTPRequestHandler):
    """Behaviour by the model name asked for: "ok", "slow", "401", "404", "429", "429-then-ok", "garbage",
    "killed" (two chunks, then the connection drops). Requests are recorded on the server (`seen`)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "ok"}, {"id": "lora", "parent": "ok"}]})
        else:
            self._json(404, {"error": "no such path"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        server = self.server
        with server.lock:
            server.seen.append({"path": self.path, "body": body, "auth": self.headers.get("authorization")})
            server.calls[body.get("model")] = server.calls.get(body.get("model"), 0) + 1
            calls = server.calls[body.get("model")]
        model = body.get("model")
        if model == "401":
            return self._json(401, {"error": "invalid api key"})
        if model in ("404", None) or self.path != "/v1/chat/completions":
            return self._json(404, {"error": f"model {model} not found"})
        if model == "429" or (model == "429-then-ok" and calls <= 2):
            return self._json(429, {"error": "slow down"}, {"Retry-After": "0"})
        if model == "slow":
            time.sleep(3)
        if not body.get("stream"):
            answer = {"index": 0, "message": {"role": "assistant", "content": "你好。"}}
            return self._json(200, {"choices": [answer]})
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        pieces = ["你", "好", "。"]
        if model == "garbage":
            self.wfile.write(b"data: {not json\n\n")
            return
        for i, piece in enumerate(pieces):
            if model == "killed" and i == 2:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # the server dies mid-answer
                return
            chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.02)
        done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())

    def _json(self, status, payload, headers=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that hangs up (a stopped pane, a timeout) is part of the tests, not an error to print


def start_scripted_server():
    server = QuietServer(("127.0.0.1", free_port()), Scripted)
    server.daemon_threads = True
    server.lock, server.seen, server.calls = threading.Lock(), [], {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def start_transformers_serve(model_dir: Path, cache: Path, timeout_s: float = 180.0, extra: tuple[str, ...] = ()):
    """`transformers serve DIR` on a free port; returns (process, base URL) once /health answers."""
    port = free_port()
    cache.mkdir(parents=True, exist_ok=True)
    # Offline, its /v1/models reads the hub cache: it needs an existing folder (it lists nothing from it).
    log = open(cache / f"serve-{port}.log", "wb")  # a file, not a pipe: a full pipe would block the server
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "transformers.cli.transformers", "serve", str(model_dir),
                                "--device", "cpu", "--dtype", "float32", "--port", str(port),
                                "--host", "127.0.0.1", *extra], env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    process.log = log
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"transformers serve exited: {(cache / f'serve-{port}.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process, f"http://127.0.0.1:{port}/v1"
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop_process(process)
    raise RuntimeError(f"transformers serve did not answer /health within {timeout_s} s")


def stop_process(process: subprocess.Popen) -> None:
    """Stop the server by its own pid (its process group: uvicorn starts no workers, but be sure)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    getattr(process, "log", None) and process.log.close()
