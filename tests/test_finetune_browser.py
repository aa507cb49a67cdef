"""The Fine-tune tab in a real headless Chromium: a reloaded page re-attaches to a finished job; Preview highlights
the trained tokens; Show command gives the CLI line."""

import pytest

from jobs.files import create_job
from jobs.worker import run
from tests.finetune_fixtures import write_alpaca
from tests.test_finetune_train import quick_config

@pytest.fixture(scope="module")
def finished_app(tmp_path_factory, tiny_chat_model, medtune_home):
    """The app over a data dir that already holds one finished job, as after a restart or from another browser."""
    from ui.context import AppContext
    from ui.layout import build_app

    root = tmp_path_factory.mktemp("ft-browser")
    data = write_alpaca(root / "qa.jsonl")
    files = create_job(quick_config(tiny_chat_model, data, max_steps=2, logging_steps=1, sample_every=0), root / "runs")
    assert run(files.dir) == 0
    app = build_app(AppContext(model=str(tiny_chat_model), data_dir=root / "runs")).queue()
    _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield url, files.job_id
    app.close()


def test_reload_reattaches_and_preview_highlights(finished_app, chromium):
    url, job_id = finished_app
    page = chromium.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(url)
    page.get_by_role("tab", name="Fine-tune").click()
    status = page.locator("#finetune-status")
    status.get_by_text("step 2/2").wait_for(timeout=30_000)
    assert job_id in status.inner_text() and "completed" in status.inner_text()
    assert "Adapter" in status.inner_text()

    page.get_by_role("button", name="Preview", exact=True).click()
    page.get_by_text("rows kept").wait_for(timeout=60_000)
    # the legend of highlighted tokens (the box shows itself once filled: ui/polish.hide_until_filled)
    page.get_by_text("trained", exact=True).first.wait_for(timeout=20_000)
    page.get_by_role("button", name="Show command").click()
    page.get_by_text("python -m finetune train --config run.yaml").wait_for(timeout=20_000)
    page.close()
