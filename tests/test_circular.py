"""--circular: each item asked with its options rotated; the always-"B" model (a pure position bias) is right on
the plain count for every "B" key and on none circularly."""

from __future__ import annotations

import json
from pathlib import Path

from evaluate_fixtures import build_always_b_model
from evaluation.circular import rotate
from evaluation.data import MCItem
from evaluation.tasks import load_dataset
from evaluation.run import EvalConfig, evaluate

ROOT = Path(__file__).resolve().parent.parent
MC = str(ROOT / "data" / "mc_sample.jsonl")


def test_rotate_maps_letters_back():
    item = MCItem("x", "q", {"A": "甲", "B": "乙", "C": "丙", "D": "丁"}, "BD", 1)
    rotated, back = rotate(item, 1)
    assert rotated.options == {"A": "乙", "B": "丙", "C": "丁", "D": "甲"}
    assert rotated.answer == "AC" and back == {"A": "B", "B": "C", "C": "D", "D": "A"}
    assert rotate(item, 0)[0] == item


def test_position_bias_scores_zero_circularly(tmp_path):
    from chat.registry import ModelRegistry

    registry = ModelRegistry(str(build_always_b_model(tmp_path / "b")), tmp_path / "data")
    [cell] = evaluate(registry, EvalConfig(data=(MC,), out_dir=str(tmp_path / "out"), circular=True, batch_size=16))
    items = load_dataset(MC).items
    share_b = 100 * sum(item.answer == "B" for item in items) / len(items)
    report = json.loads((Path(cell.dir) / "report.json").read_text())
    assert report["circular"]["plain_accuracy"] == cell.metrics["accuracy"] == share_b > 0
    assert report["circular"]["accuracy"] == 0
    assert all(len(row["circular_picks"]) == len(item.options) for row, item in zip(cell.rows, items))
    assert all(row["circular_picks"][0] == "B" for row in cell.rows)
    # a plain run is another cell (other settings), without the circular figure
    [plain] = evaluate(registry, EvalConfig(data=(MC,), out_dir=str(tmp_path / "out"), batch_size=16))
    assert plain.dir != cell.dir and "circular" not in plain.report
