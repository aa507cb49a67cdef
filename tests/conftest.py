"""Shared test setup: everything offline, shared data located beside the checkout."""
import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# The tests run tiny models while an app server, training subprocesses and pytest share 2 cores: OpenMP's spinning
# second thread then makes small tensor ops several times slower (measured 6x per training step). Child processes
# (fine-tune jobs) inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED_PUBLIC = ROOT.parent / "shared" / "data" / "public"

# A real vLLM server, started at most once per session by the tests that ask for it (see tests/vllm_fixtures.py).
from vllm_fixtures import vllm_server  # noqa: E402,F401


@pytest.fixture(scope="session")
def shared_public() -> Path:
    if not SHARED_PUBLIC.is_dir():
        pytest.skip(f"{SHARED_PUBLIC} is absent")
    return SHARED_PUBLIC


@pytest.fixture(scope="session")
def medtune_home(tmp_path_factory) -> Path:
    """One cache for the whole run (the demo model is built once), kept out of the user's home."""
    home = Path(os.environ.get("MEDTUNE_TEST_HOME", tmp_path_factory.mktemp("medtune-home")))
    os.environ["MEDTUNE_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def demo_model(medtune_home) -> Path:
    from finetune.demo_model import demo_model_dir

    return demo_model_dir()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, medtune_home):
    """The real app, launched in this process on a free port, for gradio_client tests. Yields its URL."""
    from ui.context import AppContext
    from ui.layout import build_app

    ctx = AppContext(model="demo", data_dir=tmp_path_factory.mktemp("app-data"))
    app = build_app(ctx).queue()
    _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield url
    app.close()


@pytest.fixture(scope="module")
def chat_app(tmp_path_factory, demo_model):
    """The real app with two random LoRA adapters on the demo model in its data dir. Yields (url, data_dir)."""
    from chat_fixtures import build_adapter
    from ui.context import AppContext
    from ui.layout import build_app

    data_dir = tmp_path_factory.mktemp("chat-app-data")
    for i in range(2):
        build_adapter(demo_model, data_dir / "adapters" / f"demo-lora-{i}", seed=i, base_ref="demo")
    app = build_app(AppContext(model="demo", data_dir=data_dir)).queue()
    _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield url, data_dir
    app.close()


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory) -> Path:
    """A random-weight Qwen2-shaped chat model built in seconds (finetune tests: see tests/finetune_fixtures.py)."""
    from tests.finetune_fixtures import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-chat-model"))


@pytest.fixture(scope="session")
def chromium():
    """Debian's headless Chromium through playwright (no browser download); skips where it is not installed."""
    import shutil

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no chromium on this machine (apt-get install chromium fonts-noto-cjk fonts-noto-color-emoji)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        # Without the background-networking flags Chromium keeps calling out to a network this machine lacks.
        browser = pw.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run"])
        yield browser
        browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Marks a test whose body failed (`request.node.failed`), so browser fixtures can keep a screenshot of it."""
    outcome = yield
    if outcome.get_result().when == "call" and outcome.get_result().failed:
        item.failed = True


# Test modules that start real servers (app.py, vLLM, transformers serve), a browser or several training processes:
# marked slow, so `python -m pytest -m "not slow"` is a quick run of everything else (the full run takes them all).
SLOW_MODULES = {
    "test_vllm_engine", "test_models_vllm", "test_models_serve", "test_e2e_browser", "test_chat_browser",
    "test_finetune_browser", "test_score_browser", "test_page_browser", "test_sessions_browser",
    "test_finetune_distributed", "test_gpu_check", "test_queue", "test_server", "test_login_limit",
    "test_endpoint_roles", "test_guard", "test_safeio_app", "test_score_concurrency", "test_jobs_cli",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
