"""ui/polish.py and ui/page_lang.py without a browser: what counts as an empty result box, Chinese table headers
(unique, the English page unchanged), and the language script put first into each app page's HTML by the server."""

from __future__ import annotations

import pandas as pd
from fastapi.testclient import TestClient

from ui.page_lang import inject, language_script
from ui.polish import filled, localize_frame
from ui.strings import STRINGS


def test_filled():
    assert not filled(None) and not filled(pd.DataFrame()) and not filled(pd.DataFrame(columns=["a"]))
    assert not filled([]) and not filled({"headers": ["a"], "data": []})
    assert filled(pd.DataFrame({"a": [1]})) and filled(["report.json"]) and filled({"headers": [], "data": [[1]]})


def test_localized_headers():
    frame = pd.DataFrame({"line": [3], "field": ["output"], "reason": ["x"], "demo · rouge-l": [1.0]})
    assert localize_frame(frame, "en") is frame  # the API and the English page keep the field names
    assert list(localize_frame(frame, "zh").columns) == ["行号", "字段", "原因", "demo · rouge-l"]
    assert localize_frame(None, "zh") is None
    items = pd.DataFrame(columns=["line", "demo · answer", "mc_sample · accuracy", "qa · rouge-l"])
    assert list(localize_frame(items, "zh").columns) == ["行号", "demo · 答案", "mc_sample · 准确率", "qa · rouge-l"]
    chinese = [zh for key, (_, zh) in STRINGS.items() if key.startswith("col.")]
    assert len(chinese) == len(set(chinese))  # two fields under one header could not be told apart


def test_language_script_is_injected_first():
    page = b"<!doctype html><html><head><meta charset='utf-8'><script type=module src=x.js></script></head></html>"
    out = inject(page, "zh")
    assert out.index(b"zh-CN") < out.index(b"x.js") and out.startswith(b"<!doctype html><html><head><script>")
    assert "搜索…" in language_script("zh") and "MutationObserver" not in language_script("en")
    assert inject(b"no head here", "zh") == b"no head here"


def test_the_server_sends_each_page_in_its_language(tmp_path, medtune_home):
    from ui.context import AppContext
    from ui.server import create_server

    client = TestClient(create_server(AppContext(model="demo", data_dir=tmp_path)))
    english, chinese = client.get("/"), client.get("/zh/")
    assert english.status_code == chinese.status_code == 200
    assert "return l}" in english.text and '"en"' in english.text.split("</script>")[0]
    assert '"zh-CN"' in chinese.text.split("</script>")[0]
    assert int(chinese.headers["content-length"]) == len(chinese.content)
    config = client.get("/zh/config").json()
    assert "runs" not in config.get("footer_links", [])


def test_interval_chart():
    from ui.charts import interval_chart

    assert interval_chart([], "x", "t") == ""
    svg = interval_chart([("a<b>", 1000.0, 950.0, 1050.0), ("best", 1100.0, 1040.0, 1160.0),
                          ("few votes", 900.0, float("nan"), float("nan"))], "rating", "title")
    assert svg.count("<circle") == 3 and svg.count('stroke-width="3"') == 2  # no interval line for a NaN interval
    assert "a&lt;b&gt;" in svg and "<b>" not in svg  # names are escaped
    assert svg.index("best") < svg.index("a&lt;b&gt;") < svg.index("few votes")  # best first


def test_grouped_bars_for_four_models_and_three_sets():
    from ui.charts import grouped_bars

    models = ["demo", "lora-a", "lora-b", "lora-c"]
    sets = ["mc_sample · accuracy", "qa_sample · rouge-l", "cmexam · accuracy"]
    values = {(s, m): 10.0 * i + j for i, s in enumerate(sets) for j, m in enumerate(models)}
    svg = grouped_bars(sets, models, values, "score")
    assert svg.count("<rect") == 12 + 4  # a bar per (set, model), a legend swatch per model
    assert all(f">{v:.1f}<" in svg for v in values.values())  # every value written on its bar
    assert all(m in svg for m in models) and all(s in svg for s in sets)
    del values[(sets[0], "lora-c")]
    assert grouped_bars(sets, models, values, "score").count("<rect") == 11 + 4
