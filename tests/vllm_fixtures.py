"""A real vLLM server (its CPU build) on the demo model with one LoRA adapter, shared by the whole test session.

vLLM lives in its own virtual environment (tests/vllm_env.sh builds it; it pins transformers < 5.20, the project
5.23), so the server runs as a separate process from that environment's interpreter. Starting it takes about a
minute on 2 cores, hence one start per session: every test that asks for `vllm_server` shares it, and a test that
changes the server (loads an adapter at run time) puts it back as it found it.

Without the environment the tests skip with the reason, so a developer's quick run needs no 3.4 GB download; under
CI (CI=true) they fail instead, so that a broken build can never make CI pass quietly.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STAMP = "medtune-vllm-env.txt"  # written last by tests/vllm_env.sh: present only in a complete environment
BASE_NAME = "demo"  # --served-model-name: the name requests use for the base
ADAPTER_NAME = "demo-lora"


@dataclass(frozen=True)
class VllmServer:
    base_url: str  # OpenAI-compatible root, e.g. http://127.0.0.1:PORT/v1
    base_name: str  # served name of the base model
    adapter_name: str  # served name of the adapter given with --lora-modules
    adapter_dir: Path
    demo_dir: Path  # the demo model's directory vLLM serves
    log: Path  # the server's stdout and stderr
    start_s: float  # seconds from launch until /health answered


def vllm_venv() -> Path:
    return Path(os.environ.get("MEDTUNE_VLLM_VENV", ROOT / ".venv-vllm"))


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_vllm_env() -> Path:
    """The environment's interpreter; skips the test (fails it under CI) when the environment is not complete."""
    venv = vllm_venv()
    python = venv / "bin" / "python"
    if python.is_file() and (venv / STAMP).is_file():
        return python
    reason = (f"no complete vLLM environment at {venv} (no {STAMP}): build it with `bash tests/vllm_env.sh` "
              f"(about 4 minutes, 3.4 GB; MEDTUNE_VLLM_VENV picks the folder)")
    if running_in_ci():
        pytest.fail(f"CI=true and the real-vLLM tests cannot run: {reason}. tests/vllm_env.sh failed or was not run "
                    f"(.ci/run runs it before the tests).", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's own process group (API server, engine core, worker), SIGKILL after 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    try:  # children that outlived the leader
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def launch(python: Path, demo_dir: Path, adapter_dir: Path, work: Path) -> tuple[subprocess.Popen, Path, str]:
    port = free_port()
    log = work / f"vllm-{port}.log"
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1",
               VLLM_CPU_KVCACHE_SPACE="1",  # GiB of KV cache; its default (4) is wasted on a 1k-token demo model
               VLLM_ALLOW_RUNTIME_LORA_UPDATING="1",  # enables /v1/load_lora_adapter and /v1/unload_lora_adapter
               VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1", VLLM_CACHE_ROOT=str(work / "vllm-cache"))
    # The module entry point: the `vllm` console script looks up a distribution named `vllm` (this one is
    # `vllm-cpu`) and fails. cwd is the work folder, not the repository: `python -m` puts cwd first on sys.path,
    # and our packages (models/, chat/, ...) must not shadow anything vLLM imports.
    cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(demo_dir),
           "--served-model-name", BASE_NAME, "--host", "127.0.0.1", "--port", str(port),
           "--enable-lora", "--lora-modules", f"{ADAPTER_NAME}={adapter_dir}", "--max-lora-rank", "8",
           "--max-model-len", "1024", "--dtype", "float32", "--max-num-seqs", "4"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return proc, log, f"http://127.0.0.1:{port}"


def wait_healthy(proc: subprocess.Popen, url: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vLLM exited with {proc.returncode} before /health answered; {log}:\n"
                               f"{log.read_text(errors='replace')[-4000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"vLLM did not answer /health within {timeout_s:.0f} s (MEDTUNE_VLLM_START_TIMEOUT); "
                       f"{log}:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="session")
def vllm_server(demo_model, tmp_path_factory):
    """Starts vLLM once per session on the demo model with one random LoRA adapter; stops its process group."""
    from chat_fixtures import build_adapter

    python = require_vllm_env()
    work = tmp_path_factory.mktemp("vllm")
    adapter_dir = build_adapter(demo_model, work / "adapters" / ADAPTER_NAME, seed=0, base_ref=str(demo_model))
    started = time.monotonic()
    proc, log, url = launch(python, demo_model, adapter_dir, work)
    try:
        wait_healthy(proc, url, log, float(os.environ.get("MEDTUNE_VLLM_START_TIMEOUT", "420")))
        start_s = time.monotonic() - started
        print(f"\n[vllm_server] up at {url} in {start_s:.1f} s (log: {log})")
        yield VllmServer(f"{url}/v1", BASE_NAME, ADAPTER_NAME, adapter_dir, Path(demo_model), log, start_s)
    finally:
        stop_group(proc)
        shutil.rmtree(work / "vllm-cache", ignore_errors=True)
