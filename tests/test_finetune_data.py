"""Data formats -> conversations (table tests), bad files named by file/line/field, TrainConfig validation."""

import csv
import json

import pytest

from finetune.config import ConfigError, TrainConfig
from finetune.formats import DataError, Message, load_data, parse_column_map, split_conversations

SYSTEM, Q1, A1, Q2, A2 = "你是医生。", "头痛怎么办？", "多休息。", "还要吃药吗？", "不需要。"
EXPECTED = (Message("system", SYSTEM), Message("user", Q1), Message("assistant", A1),
            Message("user", Q2), Message("assistant", A2))
EXPECTED_SINGLE = (Message("user", Q1), Message("assistant", A1))

MULTI_TURN_ROWS = {
    "alpaca": {"system": SYSTEM, "history": [[Q1, A1]], "instruction": Q2, "input": "", "output": A2},
    "openai": {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": Q1},
                            {"role": "assistant", "content": A1}, {"role": "user", "content": Q2},
                            {"role": "assistant", "content": A2}]},
    "sharegpt": {"system": SYSTEM, "conversations": [{"from": "human", "value": Q1}, {"from": "gpt", "value": A1},
                                                     {"from": "human", "value": Q2}, {"from": "gpt", "value": A2}]},
    "chatglm": {"conversations": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": Q1},
                                  {"role": "assistant", "content": A1}, {"role": "user", "content": Q2},
                                  {"role": "assistant", "content": A2}]},
    "xtuner": {"conversation": [{"system": SYSTEM, "input": Q1, "output": A1}, {"input": Q2, "output": A2}]},
}
SINGLE_TURN_ROWS = {
    "alpaca": {"instruction": Q1, "input": "", "output": A1},
    "competition": {"input": Q1, "output": A1},
    "context": {"Context": Q1, "Response": A1},
}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", sorted(MULTI_TURN_ROWS))
def test_multi_turn_formats_give_the_same_conversation(tmp_path, fmt):
    result = load_data(write_jsonl(tmp_path / "d.jsonl", [MULTI_TURN_ROWS[fmt]]))
    assert result.format == fmt
    assert not result.rejected
    assert result.conversations[0].messages == EXPECTED


@pytest.mark.parametrize("fmt", sorted(SINGLE_TURN_ROWS))
def test_single_turn_formats_give_the_same_conversation(tmp_path, fmt):
    result = load_data(write_jsonl(tmp_path / "d.jsonl", [SINGLE_TURN_ROWS[fmt]]))
    assert result.format == fmt
    assert result.conversations[0].messages == EXPECTED_SINGLE


def test_alpaca_input_follows_instruction(tmp_path):
    row = {"instruction": "回答问题", "input": Q1, "output": A1}
    conv = load_data(write_jsonl(tmp_path / "d.jsonl", [row])).conversations[0]
    assert conv.messages[0] == Message("user", f"回答问题\n{Q1}")


def test_json_array_and_csv_xlsx_with_column_map(tmp_path):
    array = tmp_path / "d.json"
    array.write_text(json.dumps([SINGLE_TURN_ROWS["alpaca"]] * 1, ensure_ascii=False, indent=2), encoding="utf-8")
    assert load_data(array).conversations[0].messages == EXPECTED_SINGLE

    table = tmp_path / "d.csv"
    with table.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["问题", "回答"], [Q1, A1]])
    mapping = parse_column_map("instruction=问题, output=回答")
    assert load_data(table, column_map=mapping).conversations[0].messages == EXPECTED_SINGLE

    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["问题", "回答"])
    book.active.append([Q1, A1])
    book.save(tmp_path / "d.xlsx")
    result = load_data(tmp_path / "d.xlsx", column_map=mapping)
    assert result.conversations[0].messages == EXPECTED_SINGLE and result.format == "alpaca"


def test_bad_rows_are_each_reported_with_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps(SINGLE_TURN_ROWS["alpaca"], ensure_ascii=False).encode()
    lines = [
        good,                                                        # 1 kept
        "头痛发热应该怎么办".encode("gbk"),                              # 2 GBK bytes
        b'{"instruction": "x", "output": ',                          # 3 broken JSON
        json.dumps({"instruction": "x"}).encode(),                   # 4 missing field
        json.dumps({"instruction": "x", "output": 5}).encode(),      # 5 wrong type
        good,                                                        # 6 duplicate
        json.dumps({"instruction": "x", "output": "  "}).encode(),  # 7 empty answer
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = load_data(path)
    assert len(result.conversations) == 1
    by_line = {r.line: r for r in result.rejected}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7]
    assert "UTF-8" in by_line[2].reason and "GBK" in by_line[2].reason
    assert "broken JSON" in by_line[3].reason
    assert (by_line[4].field, by_line[4].reason) == ("output", "missing")
    assert by_line[5].field == "output" and "expected a string, got int" in by_line[5].reason
    assert "duplicate of line 1" in by_line[6].reason
    assert by_line[7].field == "output" and "empty" in by_line[7].reason
    assert str(by_line[5]) == f"{path}:5: field 'output': expected a string, got int (5)"


def test_turn_order_and_roles_are_checked(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "a"}]},
        {"messages": [{"role": "user", "content": "a"}, {"role": "doctor", "content": "b"}]},
        {"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]},
    ]
    rejected = load_data(write_jsonl(tmp_path / "d.jsonl", rows)).rejected
    assert [r.line for r in rejected] == [1, 2, 3]
    assert rejected[1].field == "messages[1].role" and "doctor" in rejected[1].reason
    assert rejected[2].field == "messages[0].content" and "expected a user turn" in rejected[2].reason


def test_unknown_format_and_missing_column_name_the_place(tmp_path):
    with pytest.raises(DataError, match=r"d.jsonl:1: cannot tell the data format"):
        load_data(write_jsonl(tmp_path / "d.jsonl", [{"q": "a", "a": "b"}]))
    table = tmp_path / "d.csv"
    table.write_text("问题,回答\na,b\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"column_map\['output'\]: no column named '答案'"):
        load_data(table, column_map={"instruction": "问题", "output": "答案"})
    gbk = tmp_path / "g.csv"
    gbk.write_bytes("问题,回答\n头痛,休息\n".encode("gbk"))
    with pytest.raises(DataError, match=r"g.csv:1: not valid UTF-8"):
        load_data(gbk)


def test_split_max_samples_and_dedup(tmp_path):
    rows = [{"input": f"问题{i}", "output": f"答案{i}"} for i in range(20)] + [{"input": "问题0", "output": "答案0"}]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    result = load_data(path, max_samples=10)
    assert len(result.conversations) == 10 and result.duplicates == 1 and result.dropped_by_max_samples == 10
    train, val = split_conversations(load_data(path).conversations, 0.25, seed=1)
    assert (len(train), len(val)) == (15, 5)
    assert split_conversations(load_data(path).conversations, 0.25, seed=1)[1] == val  # seeded
    assert len(split_conversations(load_data(path).conversations, 3, seed=1)[1]) == 3


QLORA_UNAVAILABLE = [] if __import__("torch").cuda.is_available() else [({"load_in_4bit": True}, "load_in_4bit")]


def test_config_yaml_round_trip_and_validation(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [SINGLE_TURN_ROWS["alpaca"]])
    cfg = TrainConfig(data=str(data), lora_rank=4, sample_prompts=["头痛？"], column_map={"output": "回答"})
    cfg.save(tmp_path / "run.yaml")
    assert TrainConfig.load(tmp_path / "run.yaml") == cfg
    for changes, field in [({"lora_rank": 0}, "lora_rank"), ({"lr_scheduler": "fast"}, "lr_scheduler"),
                           ({"learning_rate": 5.0}, "learning_rate"), ({"data": "nope.jsonl"}, "data"),
                           ({"adapter_name": "a/b"}, "adapter_name")] + QLORA_UNAVAILABLE:
        with pytest.raises(ConfigError, match=f"^{field}: "):
            TrainConfig(**{**vars(cfg), **changes}).validate()
    (tmp_path / "bad.yaml").write_text("lora_rank: eight\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml: lora_rank: expected int, got str"):
        TrainConfig.load(tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text("lora_rnk: 8\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"typo.yaml: lora_rnk: unknown setting"):
        TrainConfig.load(tmp_path / "typo.yaml")
