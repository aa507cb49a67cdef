"""The app side of issue 11, item 1: the Fine-tune preview needs the role that may train, and parses and tokenises
uploads in the memory-limited worker, so that a bomb ends that request with a message and the app goes on."""

from types import SimpleNamespace

import gradio as gr
import pytest
from gradio_client import Client, handle_file

import safeio
import safeio.worker
from hosting.roles import Policy
from hosting.users import UserStore
from safeio import Limits
from tests.bomb_files import write_xlsx
from tests.finetune_fixtures import write_alpaca
from ui.context import AppContext
from ui.finetune_tab import do_preview


@pytest.fixture(autouse=True)
def default_limits():
    safeio.set_current(Limits())
    yield
    safeio.set_current(Limits())


@pytest.fixture(autouse=True, scope="module")
def stop_workers():
    yield
    safeio.worker.shutdown()


def resident_mb() -> float:
    """This process's resident memory now (Linux)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def test_preview_is_refused_to_guests_and_members_who_may_not_train(tmp_path):
    users = UserStore(None, env={"MEDTUNE_USERS": "gus:guest:gus-pw,alice:member:alice-pw",
                                 "MEDTUNE_ADMIN_PASSWORD": "admin-pw"})
    data = write_alpaca(tmp_path / "qa.jsonl")
    for name, members_can_train in (("gus", True), ("alice", False), ("nobody-known", True)):
        ctx = AppContext(data_dir=tmp_path, users=users, policy=Policy(members_can_train=members_can_train))
        with pytest.raises(gr.Error, match="may not start training"):
            do_preview(SimpleNamespace(username=name), "demo", str(data), None, "auto", "", 256, ctx=ctx)


def test_a_bomb_preview_ends_that_request_and_the_app_goes_on(app_url, tmp_path, monkeypatch):
    client = Client(app_url, verbose=False)
    good = write_xlsx(tmp_path / "good.xlsx", [["instruction", "output"], ["头痛怎么办？", "多休息。"]])
    cell = write_xlsx(tmp_path / "cell.xlsx", [["instruction", "output"], ["病" * 2_000_000, "多休息。"]])
    # The 200 MB cell of the issue, small: refused by the reader, before any tokenising.
    with pytest.raises(Exception, match="the cell holds 2,000,000 characters, over the limit"):
        client.predict("demo", handle_file(str(cell)), None, "auto", "", 256, api_name="/finetune_preview")
    summary, _, _ = client.predict("demo", handle_file(str(good)), None, "auto", "", 256,
                                   api_name="/finetune_preview")
    assert "**1** of 1 rows kept" in summary
    # Limits raised by the admin, and a worker allowed little memory: the bomb passes the reader and hits the
    # worker's memory limit instead. That request ends with a message; the server and the next request do not.
    safeio.set_current(Limits(max_field_chars=100_000_000))
    monkeypatch.setattr(safeio.worker, "DEFAULT_MEMORY_MB", 64)
    bomb = write_xlsx(tmp_path / "bomb.xlsx", [["instruction", "output"], ["病" * 16_000_000, "多休息。"]])
    before = resident_mb()
    with pytest.raises(Exception, match="needs more memory than one request may use"):
        client.predict("demo", handle_file(str(bomb)), None, "auto", "", 256, api_name="/finetune_preview")
    # The app runs in this process: parsing the bomb here would have taken a few hundred MB.
    assert resident_mb() - before < 64
    monkeypatch.setattr(safeio.worker, "DEFAULT_MEMORY_MB", 4096)
    summary, _, examples = client.predict("demo", handle_file(str(good)), None, "auto", "", 256,
                                          api_name="/finetune_preview")
    assert "**1** of 1 rows kept" in summary and examples
