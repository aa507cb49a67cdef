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
