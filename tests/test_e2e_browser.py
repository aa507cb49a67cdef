"""End to end in a real headless Chromium against `python app.py` with logins, as a user would go:

log in -> score a submission -> fine-tune the demo model on the sample data and watch the progress bar reach the end
-> chat side by side with the new adapter -> evaluate base and adapter and see the chart.

Then two users at once (two browser contexts): separate chats, a guest cannot start training, and two members'
training jobs run one after another through the shared queue. Screenshots of every step go to test-artifacts/e2e/.
"""

from __future__ import annotations

import sqlite3

import pytest

from gradio_client import Client
from gradio_client.exceptions import AppError

from tests.test_finetune_app import settings
from tests.server_fixtures import ROOT, password, start_server, write_users

ARTIFACTS = ROOT / "test-artifacts" / "e2e"
LONG = 240_000  # ms: a training or evaluation step on a busy 2-core CI machine


@pytest.fixture(scope="module")
def server(tmp_path_factory, medtune_home, demo_model):
    root = tmp_path_factory.mktemp("e2e")
    users = write_users(root / "users.yaml")
    server = start_server(root / "runs", medtune_home, "--users", str(users), "--members-can-train")
    yield server
    server.stop()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(context, url: str, name: str):
    page = context.new_page()
    page.goto(url)
    page.locator("input[name=username]").wait_for(timeout=30_000)  # redirected to the login form
    page.locator("input[name=username]").fill(name)
    page.locator("input[name=password]").fill(password(name))
    page.locator("button[type=submit], input[type=submit]").first.click()
    page.get_by_role("tab", name="Score a submission").wait_for(timeout=60_000)
    return page


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Tab")


def start_training(page, adapter: str, steps: int) -> None:
    page.get_by_role("tab", name="Fine-tune").click()
    set_number(page, "Max steps (0 = use epochs)", steps)
    page.get_by_text("Advanced").first.click()
    set_number(page, "Sample answers every N steps (0 = never)", 0)
    set_number(page, "Checkpoint every N steps", steps)
    name = page.get_by_label("Adapter name (empty = job id)")
    name.fill(adapter)
    name.press("Tab")
    page.get_by_role("button", name="Start", exact=True).click()


def wait_completed(page, adapter: str) -> None:
    status = page.locator("#finetune-status")
    status.get_by_text("completed").wait_for(timeout=LONG)
    assert adapter in status.inner_text()


@pytest.fixture
def context(chromium, request):
    """A fresh browser context; on a failure every open page is screenshotted as <test>-failed-N.png."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1100})
    yield context
    if getattr(request.node, "failed", False):
        for i, page in enumerate(context.pages):
            shot(page, f"{request.node.name}-failed-{i}")
    context.close()


def test_journey_login_score_train_chat_evaluate(server, context):
    login = context.new_page()
    login.goto(server.url)
    login.locator("input[name=username]").wait_for(timeout=30_000)
    shot(login, "01-login")
    login.close()
    page = log_in(context, server.url, "admin")
    page.locator("#header-bar").get_by_text("admin").first.wait_for(timeout=30_000)  # who is signed in

    # Score a submission: the bundled multiple-choice sample has planted problems and scores 62.5.
    page.get_by_label("Bundled sample").click()
    page.get_by_role("option", name="Multiple choice: mc_sample + its predictions").click()
    page.get_by_role("button", name="Score", exact=True).click()
    page.locator("#score-summary").get_by_text("62.50").wait_for(timeout=60_000)
    shot(page, "02-score")

    # Fine-tune the demo model on the bundled training sample; the progress bar reaches the end.
    start_training(page, "journey-lora", steps=6)
    wait_completed(page, "journey-lora")
    bar = page.locator("#finetune-status progress")
    assert bar.get_attribute("value") == bar.get_attribute("max") == "6"
    shot(page, "03-finetune")

    # Chat side by side: the base and the new adapter answer the same question in their own panes.
    page.get_by_role("tab", name="Chat & compare").click()
    page.get_by_role("button", name="Refresh models").first.click()
    page.locator("#chat-models").get_by_label("journey-lora", exact=True).check()
    page.locator("#chat-prompt textarea").fill("高血压患者饮食要注意什么？")
    page.get_by_role("button", name="Send", exact=True).first.click()
    page.locator("#chat-status").get_by_text("tokens/s").wait_for(timeout=LONG)
    panes = page.locator("[id^=chat-pane-]:visible")
    texts = [panes.nth(i).inner_text() for i in range(panes.count())]
    assert any("journey-lora" in t for t in texts) and any(t.startswith("demo") or "\ndemo" in t for t in texts)
    shot(page, "04-chat")

    # Evaluate the base and the adapter on the bundled sets; the chart appears.
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#evaluate-refresh").click()
    page.locator("#evaluate-models").get_by_label("journey-lora", exact=True).check()
    set_number(page, "First N items per set (0 = all)", 4)
    set_number(page, "Max new tokens (free-form)", 16)
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator("#evaluate-summary").get_by_text("2 model(s)").wait_for(timeout=LONG)
    page.locator("#evaluate-chart svg").first.wait_for(timeout=60_000)  # ui/charts.grouped_bars
    shot(page, "05-evaluate")
    table = page.locator("body").inner_text()
    assert "journey-lora" in table and "mc_sample" in table and "qa_sample" in table


def chat_once(page, question: str) -> str:
    page.get_by_role("tab", name="Chat & compare").click()
    page.locator("#chat-prompt textarea").fill(question)
    page.get_by_role("button", name="Send", exact=True).first.click()
    page.locator("#chat-status").get_by_text("tokens/s").wait_for(timeout=LONG)
    return page.locator("#chat-pane-0").inner_text()


def test_two_users_at_once(server, chromium):
    """A member and a guest in two browser contexts: separate chats, the guest may not train; two members' training
    jobs go through the one queue one after another."""
    contexts = {name: chromium.new_context(viewport={"width": 1400, "height": 1100}) for name in ("alice", "bob", "gus")}
    try:
        pages = {name: log_in(context, server.url, name) for name, context in contexts.items()}
        alice, bob, gus = pages["alice"], pages["bob"], pages["gus"]

        # Separate conversations: each sees only their own question.
        alice_pane, gus_pane = chat_once(alice, "头痛怎么办？"), chat_once(gus, "发烧怎么办？")
        assert "头痛怎么办？" in alice_pane and "发烧怎么办？" not in alice_pane
        assert "发烧怎么办？" in gus_pane and "头痛怎么办？" not in gus_pane
        assert "发烧怎么办？" not in alice.locator("#chat-pane-0").inner_text()
        shot(gus, "06-guest-chat")

        # The guest may not start training: Start is disabled with a note saying why, and the API refuses too.
        gus.get_by_role("tab", name="Fine-tune").click()
        gus.locator("#finetune-role-note").get_by_text("may not start training").wait_for(timeout=30_000)
        assert gus.get_by_role("button", name="Start", exact=True).is_disabled()
        alice.get_by_role("tab", name="Fine-tune").click()
        assert alice.get_by_role("button", name="Start", exact=True).is_enabled()
        shot(gus, "07-guest-cannot-train")
        guest_api = Client(server.url, auth=("gus", password("gus")), verbose=False)
        with pytest.raises(AppError, match="may not start training"):
            guest_api.predict("demo", None, "train_sample.jsonl", "auto", "", *settings(max_steps=2),
                              api_name="/finetune_start")

        # Two members start training at once: the queue runs one, then the other.
        start_training(alice, "alice-lora", steps=4)
        alice.locator("#finetune-status").get_by_text("alice-lora").first.wait_for(timeout=60_000)
        start_training(bob, "bob-lora", steps=4)
        bob.locator("#finetune-status").get_by_text("bob-lora").first.wait_for(timeout=60_000)
        bob.get_by_role("tab", name="Jobs").click()
        bob.locator("#jobs-table").get_by_text("bob-lora").first.wait_for(timeout=30_000)
        shot(bob, "08-queue-two-members")
        bob.get_by_role("tab", name="Fine-tune").click()
        wait_completed(alice, "alice-lora")
        wait_completed(bob, "bob-lora")
    finally:
        for context in contexts.values():
            context.close()
    with sqlite3.connect(server.data_dir / "queue.sqlite") as db:
        runs = db.execute("SELECT owner, state, started_at, finished_at FROM jobs WHERE kind = 'train' "
                          "AND owner IN ('alice', 'bob', 'gus') ORDER BY started_at").fetchall()
    assert [(owner, state) for owner, state, _, _ in runs] == [("alice", "completed"), ("bob", "completed")]
    assert runs[1][2] >= runs[0][3], "the second job started only after the first had finished"
