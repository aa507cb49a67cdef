"""The whole page as a new user sees it, in a real headless Chromium, in both languages.

Each tab of / and /zh/ is walked with the browser set to the OTHER language (so gradio's own widget texts must follow
the page, not the browser), and fails on any visible text of the other language: on /zh/ an English word that is not
a model name, file name, code or a technical name in the allow-list; on / any Chinese character but the language
link. Before anything is run no result table or chart shows placeholder headers. Then a score in each language:
its table headers are in the page's language. Screenshots go to test-artifacts/page/ (look at them).
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from ui import strings

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "page"
LONG = 180_000  # ms: generating two answers on a busy 2-core machine

# Words that stay as they are on the Chinese page: names of models, methods, formats, tools and settings.
ALLOWED_EN = {
    "lora", "qlora", "cuda", "jsonl", "json", "csv", "xlsx", "api", "hub", "id", "ids", "demo", "gradio", "owner",
    "name", "auto", "alpha", "dropout", "cosine", "linear", "all", "rouge", "bleu", "gpu", "cpu", "mb", "gb", "kb",
    "fp", "bf", "nan", "medtune", "qwen", "instruct", "vllm", "sglang", "openai", "yaml", "token", "tokens",
    "huatuo", "cmexam", "mc", "qa", "sample", "predictions", "competition", "train", "english", "hf", "endpoint",
    "cli",  # "(cli)": the owner name of jobs started from the command line, a name, not a word
    "kib", "mib", "gib", "tib",  # binary byte units (models/units.human_bytes)
}
CODE_LIKE = re.compile(r"\S*\w[/_.=:-]+\w\S*|--?\w[\w-]*|[A-Z_]{3,}")  # paths, ids, file names, flags, ENV_NAMES
CJK = re.compile(r"[\u3400-\u9fff\uff01-\uff5e\u3000-\u303f]")

VISIBLE_TEXT = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!el || !node.textContent.trim() || el.closest('code, pre, script, style, #lang-switch')) continue;
    const box = el.getBoundingClientRect(), css = getComputedStyle(el);
    if (box.width === 0 || box.height === 0 || css.visibility === 'hidden' || !el.checkVisibility()) continue;
    out.push(node.textContent.trim());
  }
  document.querySelectorAll('input[placeholder], textarea[placeholder]').forEach(i => {
    if (i.checkVisibility() && i.placeholder.trim()) out.push(i.placeholder.trim()); });
  return out;
}"""


# New status nodes (svelte inserts them) and a text node whose value changes (svelte's set_text), as gradio's
# statustracker does while an event is queued or running.
STATUS_LINE = """async () => {
  const tick = () => new Promise(r => setTimeout(r, 50));
  const added = document.createElement('div'); added.textContent = 'processing |'; document.body.append(added);
  const changed = document.createElement('div'); changed.textContent = '0.5s'; document.body.append(changed);
  const cached = document.createElement('div'); document.body.append(cached);
  await tick();
  changed.firstChild.nodeValue = 'queue: 2/5 |';
  cached.append(document.createTextNode('from cache'));
  await tick();
  const out = [added.textContent, changed.textContent, cached.textContent];
  added.remove(); changed.remove(); cached.remove();
  return out;
}"""


def foreign(texts: list[str], lang: str) -> list[str]:
    """The texts that belong to the other language."""
    if lang == "en":  # the only Chinese allowed: example user data in an "e.g." placeholder (the data is Chinese)
        return [text for text in texts if CJK.search(text) and not text.startswith("e.g.")]
    bad = []
    for text in texts:
        words = re.findall(r"[A-Za-z]{2,}", CODE_LIKE.sub(" ", text))
        if any(word.lower() not in ALLOWED_EN for word in words):
            bad.append(text)
    return bad


@pytest.fixture(scope="module")
def site(tmp_path_factory, medtune_home, demo_model):
    """The real server (both languages, as app.py serves them) in this process, on a free port."""
    import uvicorn

    from tests.server_fixtures import free_port
    from ui.context import AppContext
    from ui.server import create_server

    from chat_fixtures import build_adapter

    data_dir = tmp_path_factory.mktemp("page-data")
    for i in range(2):  # the blind test needs two models besides the base
        build_adapter(demo_model, data_dir / "adapters" / f"demo-lora-{i}", seed=i, base_ref="demo")
    ctx = AppContext(model="demo", data_dir=data_dir)
    from ui import footer

    # No periodic footer refresh here: the phone test sees the footer change only through the refresh a chat
    # answer asks for (ui/footer.REFRESH_JS), not by waiting for the timer.
    saved, footer.REFRESH_S = footer.REFRESH_S, 3600.0
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_server(ctx), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started and time.time() < deadline:
        time.sleep(0.1)
    footer.REFRESH_S = saved
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("lang,path,browser_locale", [("en", "/", "zh-CN"), ("zh", "/zh/", "en-US")])
def test_every_tab_speaks_the_page_language(site, chromium, lang, path, browser_locale):
    context = chromium.new_context(viewport={"width": 1440, "height": 1000}, locale=browser_locale)
    page = context.new_page()
    try:
        page.goto(site + path)
        page.locator("#footer").wait_for(timeout=60_000)
        assert page.evaluate("navigator.language") == {"en": "en", "zh": "zh-CN"}[lang]
        tabs = page.get_by_role("tab")
        names = [tabs.nth(i).inner_text() for i in range(tabs.count())]
        assert len(names) >= 5
        problems = {}
        for i, name in enumerate(names):
            page.get_by_role("tab", name=name, exact=True).first.click()
            page.wait_for_timeout(800)
            catalog = page.locator("#picker-catalog")
            if catalog.is_visible():  # the model picker's catalog: its table must speak the page's language too
                catalog.locator("button.label-wrap, .label-wrap").first.click()
                catalog.locator("table th:visible").first.wait_for(timeout=30_000)
                page.wait_for_timeout(300)
                # the admin's Cancel is live only while the chosen model downloads: here nothing does
                cancel = catalog.get_by_role("button", name=strings.t("picker.cancel", lang), exact=True)
                assert cancel.is_visible() and cancel.is_disabled(), f"{name}: Cancel download is live"
            texts = page.evaluate(VISIBLE_TEXT)
            shot(page, f"{lang}-tab{i}")
            if bad := foreign(texts, lang):
                problems[name] = bad
            # gradio's placeholder headers of an empty table ("1", "2", "3") are never on show before a run
            headers = [h.strip() for h in page.locator("table th:visible").all_inner_texts()]
            assert headers[:3] != ["1", "2", "3"], f"{name}: an empty table shows placeholder headers"
        assert not problems, f"text of the other language on {path}: {problems}"
        if lang == "zh":  # gradio's hard-coded status line over a running event's outputs, as svelte writes it
            shown = page.evaluate(STATUS_LINE)
            assert shown == ["处理中 |", "排队：2/5 |", "来自缓存"], shown
    finally:
        context.close()


@pytest.mark.parametrize("lang,path", [("en", "/"), ("zh", "/zh/")])
def test_score_tables_have_headers_in_the_page_language(site, chromium, lang, path):
    context = chromium.new_context(viewport={"width": 1440, "height": 1000}, locale="en-US")
    page = context.new_page()
    try:
        page.goto(site + path)
        page.locator("#footer").wait_for(timeout=60_000)
        assert not page.locator("#score-summary ~ * table").first.is_visible()  # nothing shown before a score
        page.get_by_label({"en": "Bundled sample", "zh": "内置样例"}[lang], exact=True).click()
        page.get_by_role("option").nth(1).click()
        page.get_by_role("button", name={"en": "Score", "zh": "评测"}[lang], exact=True).click()
        page.locator("#score-summary").get_by_text("62.50").wait_for(timeout=60_000)
        page.wait_for_timeout(500)
        headers = [h.strip() for h in page.locator("table th:visible").all_inner_texts() if h.strip()]
        shot(page, f"{lang}-score")
        assert headers and not foreign(headers, lang), headers
        expected = {"en": ["severity", "line", "message", "fix"], "zh": ["严重程度", "行号", "说明", "修改方法"]}[lang]
        assert set(expected) <= set(headers)
        placeholder = page.locator("input.search-input").first.get_attribute("placeholder")
        assert placeholder == {"en": "Search...", "zh": "搜索…"}[lang]
    finally:
        context.close()


def open_tab(page, name: str) -> None:
    """A tab by name; on a phone gradio moves the tabs that do not fit behind a "More tabs" menu."""
    tab = page.get_by_role("tab", name=name, exact=True)
    if tab.count() and tab.first.is_visible():
        tab.first.click()
        return
    for more in page.get_by_role("button", name="More tabs").all():
        if more.is_visible():
            more.click()
            item = page.locator("button:visible", has_text=name).last
            if item.count():
                item.click()
                return
    raise AssertionError(f"no tab {name!r} on the page")


def test_a_phone_votes_once_and_reads_the_leaderboard(site, chromium):
    """At 390 px: the blind test's answers stack, the vote buttons are on screen, one vote reaches the leaderboard
    (chart with 95% intervals, tables), and the footer names the base model that answered (refreshed by the answer
    itself: the fixture's footer timer is an hour)."""
    from ui.strings import t

    context = chromium.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                   has_touch=True, locale="en-US")
    page = context.new_page()
    try:
        page.goto(site + "/")
        page.locator("#footer").wait_for(timeout=60_000)
        open_tab(page, t("chat.tab"))
        open_tab(page, t("chat.mode_blind"))
        page.get_by_role("button", name=t("chat.blind_new")).click()
        page.locator("#blind-prompt textarea").fill("高血压患者饮食要注意什么？")
        page.locator("#blind-send").click()
        vote = page.get_by_role("button", name=t("chat.vote_a"))
        vote.wait_for(timeout=LONG)
        page.wait_for_function("b => !b.disabled", arg=vote.element_handle(), timeout=LONG)
        a, b = (page.locator(f"#blind-pane-{side}").bounding_box() for side in "ab")
        assert a["width"] > 300 and b["width"] > 300 and b["y"] >= a["y"] + a["height"] - 1  # stacked
        vote.scroll_into_view_if_needed()
        box = vote.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        shot(page, "phone-blind")
        vote.tap()
        page.locator("#blind-status").get_by_text("demo").first.wait_for(timeout=30_000)  # the names revealed

        open_tab(page, t("chat.mode_board"))
        page.locator("#board-summary").get_by_text("1 votes").wait_for(timeout=60_000)
        chart = page.locator("#board-chart svg.rating-chart")
        chart.wait_for(timeout=30_000)
        assert page.locator("#board-chart svg circle").count() == 2  # the two models of the battle, each a dot
        for mark in page.locator("#board-chart svg circle, #board-chart svg text").all():  # all on screen
            box = mark.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, mark.inner_html()
        page.locator("table:visible").first.wait_for(timeout=10_000)  # the standings
        # the base, loaded by the battle: shown at once after the answers, not at the next timer tick
        page.locator("#footer").get_by_text("demo (").wait_for(timeout=5_000)
        shot(page, "phone-leaderboard")
    finally:
        context.close()
