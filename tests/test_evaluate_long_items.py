"""One item longer than the model's context no longer ends an evaluation: it is cut from the left, scored, and the
report says which (issue 17: 14 of CMB-Clin's 158 items exceeded the demo model's 1,024 tokens)."""

import json
from pathlib import Path

from evaluation.run import EvalConfig, evaluate


def test_a_long_item_is_cut_and_reported(demo_model, tmp_path):
    from chat.registry import ModelRegistry

    long_question = "患者男，65岁，反复胸闷气短十年，" * 400  # thousands of tokens; the demo's context: 1,024
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in [
        {"id": "short", "input": "头痛怎么办？", "output": "多休息。"},
        {"id": "long", "input": long_question + "该如何处理？", "output": "完善检查。"},
    ]), encoding="utf-8")
    registry = ModelRegistry("demo", tmp_path / "data")
    [cell] = evaluate(registry, EvalConfig(data=(str(data),), out_dir=str(tmp_path / "out"), qa_max_new_tokens=4))
    assert [row["id"] for row in cell.rows] == ["short", "long"]
    cut = cell.report["truncated"]
    assert cut["items"] == 1 and cut["which"][0]["id"] == "long" and cut["which"][0]["tokens_cut"] > 1000
    saved = json.loads((Path(cell.dir) / "report.json").read_text(encoding="utf-8"))
    assert saved["truncated"]["items"] == 1
    predictions = (Path(cell.dir) / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(predictions) == 2  # a submission with every item
