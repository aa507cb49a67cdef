"""The Chat tab in a real headless Chromium: ask, watch the panes fill, vote blind, see the names."""

import pytest


@pytest.fixture(scope="module")
def page(chat_app, chromium):
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(chat_app[0])
    page.get_by_role("tab", name="Chat & compare").click()
    page.get_by_text("System prompt and decoding").click()
    max_new = page.get_by_label("number input for Max new tokens")
    max_new.fill("24")
    max_new.press("Enter")
    yield page
    page.close()


def test_side_by_side_in_the_browser(page):
    panes = page.locator("#chat-pane-0, #chat-pane-1, #chat-pane-2")
    page.locator("#chat-prompt textarea").fill("头痛怎么办？")
    page.get_by_role("button", name="Send", exact=True).first.click()
    page.locator("#chat-status").get_by_text("tokens/s").wait_for(timeout=60_000)
    assert panes.count() == 3
    for i, name in enumerate(["demo", "demo-lora-0", "demo-lora-1"]):
        pane = page.locator(f"#chat-pane-{i}")
        assert name in pane.inner_text() and "头痛怎么办？" in pane.inner_text()
        assert pane.locator(".bot, [data-testid='bot']").count() >= 1


def test_blind_vote_in_the_browser(page):
    page.get_by_role("tab", name="Blind test").click()
    page.get_by_role("button", name="New battle").click()
    page.get_by_text("two hidden models are ready").wait_for(timeout=20_000)
    page.locator("#blind-prompt textarea").fill("发烧怎么办？")
    page.locator("#blind-send").click()
    tie = page.get_by_role("button", name="🤝 Tie")
    page.wait_for_function("b => !b.disabled", arg=tie.element_handle(), timeout=60_000)
    tie.click()
    page.get_by_text("Model A was").wait_for(timeout=20_000)
    assert "Model A ·" in page.locator("#blind-pane-a").inner_text()
