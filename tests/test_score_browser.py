"""The Score tab in a real headless Chromium: upload both files, score, read the summary and the problems."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def test_upload_and_score_in_the_browser(app_url, chromium):
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url)
    page.locator("#score-reference input[type=file]").set_input_files(str(ROOT / "data/mc_sample.jsonl"))
    page.locator("#score-reference").get_by_text("mc_sample.jsonl").wait_for(timeout=20_000)
    page.locator("#score-predictions input[type=file]").set_input_files(str(ROOT / "data/mc_sample_predictions.jsonl"))
    page.locator("#score-predictions").get_by_text("mc_sample_predictions.jsonl").wait_for(timeout=20_000)
    page.get_by_role("button", name="Score", exact=True).click()
    summary = page.locator("#score-summary")
    summary.get_by_text("Score 62.50").wait_for(timeout=60_000)
    assert "predictions file is malformed" in summary.inner_text()
    page.get_by_text("duplicate_id").first.wait_for(timeout=10_000)
    assert page.get_by_text("mc-099").first.is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "score_tab.png"), full_page=True)
    page.close()
