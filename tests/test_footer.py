"""The shared-server footer (memory, GPU, models in memory, jobs), the memory budget seen from the Chat tab, the
admin's load / unload box, and role checks, driven over HTTP with gradio_client against the running app."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
import subprocess
import sys

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.utils import StatusUpdate

from hosting import resources
from hosting.roles import User
from ui.access import allowed, require
from ui.context import AppContext

DECODING = ["", 8, 0.0, 1.0, 0, 1.0, 0]  # system, max_new, temperature, top_p, top_k, rep, seed
PASSWORD = "pw-for-tests"


class FakeUsers:
    """Stands in for hosting.users' store: only `.user(name)` is used by ui.access."""

    def __init__(self, roles: dict[str, str]):
        self.roles = roles

    def user(self, name: str) -> User | None:
        return User(name, self.roles[name]) if name in self.roles else None


USERS = FakeUsers({"boss": "admin", "gina": "guest", "mo": "member"})


def test_resources_read_proc_files(tmp_path):
    (tmp_path / "status").write_text("Name:\tpython\nVmPeak:\t  900 kB\nVmRSS:\t  123456 kB\n")
    (tmp_path / "meminfo").write_text("MemTotal:       16000000 kB\nMemFree: 1 kB\nMemAvailable:    8000000 kB\n")
    assert resources.process_rss_bytes(tmp_path / "status") == 123456 * 1024
    assert resources.system_memory(tmp_path / "meminfo") == (16000000 * 1024, 8000000 * 1024)
    assert resources.process_rss_bytes(tmp_path / "missing") is None  # unknown, not a made-up number
    now = resources.snapshot()
    assert 0 < now.process_rss_bytes < now.total_bytes and 0 < now.available_bytes <= now.total_bytes
    import torch

    if not torch.cuda.is_available():
        assert now.gpus == ()
    else:
        assert all(g.total_bytes > 0 and (g.used_bytes is None or g.used_bytes <= g.total_bytes) for g in now.gpus)


def test_resources_module_needs_no_gradio():
    code = "import sys, hosting.resources; assert 'gradio' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_role_checks_for_a_guest(tmp_path):
    from ui.chat_tab import ChatHandlers

    ctx = AppContext(model="demo", data_dir=tmp_path, users=USERS)
    guest, admin, stranger = (gr.Request(username=n) for n in ("gina", "boss", "someone-removed"))
    assert all(allowed(guest, ctx, a) for a in ("chat", "vote", "score"))
    assert not allowed(guest, ctx, "manage_models") and not allowed(stranger, ctx, "manage_models")
    with pytest.raises(gr.Error, match="gina.*guest.*load or unload models"):
        require(guest, ctx, "manage_models")
    handlers = ChatHandlers(ctx)
    assert handlers.manage_box(guest)[0]["visible"] is False
    assert handlers.manage_box(admin)[0]["visible"] is True
    with pytest.raises(gr.Error, match="may not load or unload"):
        handlers.load_model("demo", guest)


@pytest.fixture(scope="module")
def budget_app(tmp_path_factory, demo_model):
    """The app with two adapters, logins (admin "boss", guest "gina") and a budget for the base plus one adapter."""
    from chat.registry import ModelRegistry
    from chat_fixtures import build_adapter
    from ui.layout import build_app

    data_dir = tmp_path_factory.mktemp("footer-app")
    for i in range(2):
        build_adapter(demo_model, data_dir / "adapters" / f"demo-lora-{i}", seed=i, base_ref="demo")
    probe = ModelRegistry("demo", data_dir)
    probe.attach("demo-lora-0")
    sizes = {m.name: m.bytes for m in probe.models()}
    disk = (data_dir / "adapters" / "demo-lora-0" / "adapter_model.safetensors").stat().st_size
    budget = sizes["demo"] + max(sizes["demo-lora-0"], disk) + 100
    ctx = AppContext(model="demo", data_dir=data_dir, users=USERS, memory_budget_gb=budget / 2**30)
    app = build_app(ctx).queue()
    _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True,
                           auth=[("boss", PASSWORD), ("gina", PASSWORD)])
    yield url
    app.close()


def chat_with_logs(client: Client, model: str) -> tuple[list, list[str]]:
    """The final outputs of /chat_send and the gr.Info / gr.Warning messages it sent on the way."""
    job = client.submit("头痛怎么办？", [model], *DECODING, api_name="/chat_send")

    async def logs():
        return [u.log[0] for u in [u async for u in job] if isinstance(u, StatusUpdate) and u.log]

    # In a thread of its own: the session's Chromium fixture (playwright's sync API) keeps an event loop running in
    # this one, where asyncio.run would refuse to start.
    with ThreadPoolExecutor(1) as pool:
        messages = pool.submit(asyncio.run, logs()).result()
    return job.result(), messages


def test_footer_shows_loaded_models_and_the_budget_unload_is_told(budget_app):
    admin = Client(budget_app, auth=("boss", PASSWORD), verbose=False)
    before = admin.predict(api_name="/footer")
    assert "**Memory** app " in before and "none yet" in before and "budget" not in before.split("Models")[0]
    _, logs = chat_with_logs(admin, "demo-lora-0")
    assert logs == []
    footer = admin.predict(api_name="/footer")
    assert "demo (base, " in footer and "demo-lora-0 (adapter, " in footer and " budget" in footer
    _, logs = chat_with_logs(admin, "demo-lora-1")  # no room for two adapters: the older one goes, and we are told
    assert any("Unloaded adapter demo-lora-0 (least recently used) to stay under the" in m for m in logs), logs
    footer = admin.predict(api_name="/footer")
    assert "demo-lora-1 (adapter, " in footer and "demo-lora-0 (adapter" not in footer
    assert "last unloaded: demo-lora-0 (least recently used" in footer


def test_admin_loads_and_unloads_models_and_a_guest_may_not(budget_app):
    admin = Client(budget_app, auth=("boss", PASSWORD), verbose=False)
    note, table = admin.predict("demo-lora-0", api_name="/models_load")
    assert "Loaded demo-lora-0" in note and "Unloaded adapter demo-lora-1 (least recently used)" in note
    status = {row[0]: row[2] for row in table["data"]}
    assert "in memory" in status["demo-lora-0"] and "not loaded" in status["demo-lora-1"]
    note, _ = admin.predict("demo-lora-0", api_name="/models_unload")
    assert note.startswith("Unloaded demo-lora-0 (")
    with pytest.raises(Exception, match="'demo-lora-0' is not loaded"):
        admin.predict("demo-lora-0", api_name="/models_unload")

    guest = Client(budget_app, auth=("gina", PASSWORD), verbose=False)
    with pytest.raises(Exception, match="gina \\(role guest\\) may not load or unload models"):
        guest.predict("demo-lora-1", api_name="/models_load")
    final = guest.predict("发烧怎么办？", ["demo"], *DECODING, api_name="/chat_send")  # guests may chat
    assert "tokens/s" in final[1]
    assert "demo-lora-1" not in guest.predict(api_name="/footer").split("last unloaded")[0]
