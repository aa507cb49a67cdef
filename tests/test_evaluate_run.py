"""Evaluation runs on a model that always answers "B": exact accuracies, extraction, resume, shots, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluate_fixtures import build_always_b_model
from evaluation.data import DataFileError
from evaluation.prompts import PromptConfig, build_messages
from evaluation.run import EvalCancelled, EvalConfig, EvalError, evaluate, mc_likelihood_rows, side_by_side
from evaluation.tasks import MULTIPLE_CHOICE, load_dataset
from models.local.model import InProcessModel

ROOT = Path(__file__).resolve().parent.parent
MC = str(ROOT / "data" / "mc_sample.jsonl")
MC_COMPETITION = str(ROOT / "data" / "mc_sample_competition.jsonl")
QA = str(ROOT / "data" / "qa_sample.jsonl")


@pytest.fixture(scope="module")
def b_model(tmp_path_factory) -> Path:
    return build_always_b_model(tmp_path_factory.mktemp("always-b"))


@pytest.fixture(scope="module")
def registry(b_model, tmp_path_factory):
    from chat.registry import ModelRegistry

    return ModelRegistry(str(b_model), tmp_path_factory.mktemp("eval-data"))


def share_of_b(path: str) -> float:
    items = load_dataset(path).items
    return 100 * sum(item.answer == "B" for item in items) / len(items)


@pytest.mark.parametrize("method", ["likelihood", "generate"])
@pytest.mark.parametrize("data", [MC, MC_COMPETITION])
def test_accuracy_is_the_share_of_b_keys(registry, tmp_path, method, data):
    from evaluation.submission import score_submission

    [cell] = evaluate(registry, EvalConfig(data=(data,), out_dir=str(tmp_path), method=method, batch_size=5))
    assert cell.metrics["accuracy"] == pytest.approx(share_of_b(data))
    assert cell.metrics["unparsed"] == 0
    assert cell.metrics["multi_answer_items"] > 0 and cell.metrics["multi_answer_accuracy"] == 0
    assert all(row["prediction"] == "B" for row in cell.rows)
    # The predictions file is a valid submission, and the scorer agrees with the run.
    report = score_submission(data, Path(cell.dir) / "predictions.jsonl")
    assert report.exit_status == 0 and report.metrics["accuracy"] == pytest.approx(cell.metrics["accuracy"])
    saved = json.loads((Path(cell.dir) / "report.json").read_text())
    assert saved["method"] == method and saved["data"]["sha256"] and saved["seed"] == 0
    assert saved["prompt"]["mc_template"] == PromptConfig().mc_template
    assert (saved["decoding"] is None) == (method == "likelihood")
    assert len((Path(cell.dir) / "items.jsonl").read_text().splitlines()) == 32


def test_free_form_is_generated_and_scored(registry, tmp_path):
    [cell] = evaluate(registry, EvalConfig(data=(QA,), out_dir=str(tmp_path), limit=6, qa_max_new_tokens=8))
    assert [row["output"] for row in cell.rows] == ["B"] * 6
    assert set(cell.metrics) == {"rouge-1", "rouge-2", "rouge-l", "bleu-4"}
    lines = (Path(cell.dir) / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines][0] == {"id": "qa-001", "output": "B"}
    assert cell.report["decoding"]["max_new_tokens"] == 8 and cell.report["decoding"]["temperature"] == 0.0


def test_base_stays_exact_beside_an_adapter(registry, b_model, tmp_path):
    from chat_fixtures import build_adapter

    adapter_dir = registry.adapters_dir / "noisy"
    build_adapter(b_model, adapter_dir, seed=1, base_ref=str(b_model))
    cells = evaluate(registry, EvalConfig(data=(MC,), out_dir=str(tmp_path), models=("noisy", None)))
    assert [c.model for c in cells] == ["noisy", str(b_model)]
    assert cells[1].metrics["accuracy"] == pytest.approx(share_of_b(MC))  # adapters switched off for the base
    assert cells[0].report["adapter"] == "noisy" and cells[0].report["adapter_sha256"]
    assert cells[0].dir != cells[1].dir
    view = side_by_side(cells, "mc_sample")
    assert len(view) == 32 and "noisy · answer" in view[0] and f"{b_model} · accuracy" in view[0]
    means = [(row["noisy · accuracy"] + row[f"{b_model} · accuracy"]) / 2 for row in view]
    assert means == sorted(means)  # worst first


class ScriptedRegistry:
    """The registry's surface the runs use, answering from a script: generation and extraction without a model."""

    base_name = "scripted"

    def __init__(self, tokenizer, answers):
        self.tokenizer, self.answers, self.prompts = tokenizer, answers, []

    def render(self, messages):
        return "\n".join(m["content"] for m in messages)

    def generate(self, prompts, adapter=None, settings=None, batch_size=8):
        self.prompts += prompts
        return [self.answers(p) for p in prompts]

    def models(self):
        return []

    def context_limit(self):
        return None  # a model that does not say: prompts go as they are

    def model_for(self, name):
        return InProcessModel(self, name)


def test_generate_reads_letters_out_of_free_text(registry, tmp_path):
    def answer(prompt):
        if "二甲双胍" in prompt:
            return "根据指南，首选二甲双胍，故选B。"
        if "肌红蛋白" in prompt:
            return "我不确定。"
        return "答案：C"

    scripted = ScriptedRegistry(registry.tokenizer, answer)
    [cell] = evaluate(scripted, EvalConfig(data=(MC,), out_dir=str(tmp_path), method="generate", limit=4))
    by_id = {row["id"]: row for row in cell.rows}
    assert by_id["mc-002"]["prediction"] == "B" and by_id["mc-002"]["correct"]
    assert by_id["mc-001"]["prediction"] is None and by_id["mc-001"]["unparsed"]
    assert cell.metrics["unparsed"] == 1


def test_likelihood_threshold_predicts_several_letters(registry):
    import torch

    item = next(i for i in load_dataset(MC).items if i.answer == "ABC")
    ids = [registry.tokenizer.encode(letter, add_special_tokens=False)[0] for letter in "ABCD"]

    class Fixed:
        tokenizer = registry.tokenizer
        base_name = "fixed"

        def next_token_logits(self, prompts, adapter=None):
            logits = torch.full((len(prompts), len(registry.tokenizer)), -20.0)
            logits[:, ids[0]] = logits[:, ids[1]] = logits[:, ids[2]] = 5.0
            return logits

    [single] = mc_likelihood_rows(InProcessModel(Fixed()), [item], ["p"], None)
    [multi] = mc_likelihood_rows(InProcessModel(Fixed()), [item], ["p"], 0.2)
    assert single["prediction"] == "A" and not single["correct"]  # one letter: a multi-answer item is wrong
    assert multi["prediction"] == "ABC" and multi["correct"]


def test_interrupted_run_resumes_and_skips_done_items(registry, tmp_path):
    calls = []
    original = registry.generate

    def counting(prompts, **kwargs):
        calls.append(len(prompts))
        return original(prompts, **kwargs)

    def interrupt(progress):
        if progress.done >= 8:
            raise KeyboardInterrupt

    config = EvalConfig(data=(MC, QA), out_dir=str(tmp_path / "a"), method="generate", batch_size=4, limit=12,
                        qa_max_new_tokens=8)
    registry.generate = counting
    try:
        with pytest.raises(KeyboardInterrupt):
            evaluate(registry, config, progress=interrupt)
        [cell_dir] = (tmp_path / "a").glob("*/mc_sample-*")
        with open(cell_dir / "items.jsonl", "a") as handle:
            handle.write('{"key": "id:mc-0')  # a line cut short by the kill
        assert sum(calls) == 8 and not (cell_dir / "report.json").exists()
        calls.clear()
        resumed = evaluate(registry, config)
        assert calls[:1] == [4] and sum(calls) == 4 + 12  # the MC set's last batch, then the free-form set
    finally:
        del registry.generate
    fresh = evaluate(registry, EvalConfig(**{**config.__dict__, "out_dir": str(tmp_path / "b")}))
    for a, b in zip(resumed, fresh):
        assert a.metrics == b.metrics and a.rows == b.rows
    assert len((cell_dir / "items.jsonl").read_text().splitlines()) == 12


def test_stop_between_batches(registry, tmp_path):
    import threading

    stop = threading.Event()
    stop.set()
    with pytest.raises(EvalCancelled, match="resume"):
        evaluate(registry, EvalConfig(data=(MC,), out_dir=str(tmp_path)), stop=stop)


def test_a_malformed_set_is_refused_with_its_lines(registry, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "question": "q", "options": {"A": "x", "B": "y"}, "answer": "B"}\n'
                   '{"id": "2", "question": "q", "options": {"A": "x", "B": "y"}, "answer": "Z"}\n', encoding="utf-8")
    with pytest.raises(DataFileError, match=r"bad.jsonl:2: .*answer"):
        evaluate(registry, EvalConfig(data=(str(bad),), out_dir=str(tmp_path / "out")))


def test_shots_come_from_their_own_file(registry, tmp_path):
    with pytest.raises(EvalError, match="shots_data"):
        EvalConfig(data=(MC,), out_dir=str(tmp_path), shots=2)
    with pytest.raises(EvalError, match="task qa"):
        evaluate(registry, EvalConfig(data=(MC, QA), out_dir=str(tmp_path), shots=1, shots_data=(MC_COMPETITION,)))
    shots = load_dataset(MC_COMPETITION).items[:2]
    messages = build_messages(MULTIPLE_CHOICE, load_dataset(MC).items[5], PromptConfig(), shots)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[2]["content"] == shots[0].answer
    [cell] = evaluate(registry, EvalConfig(data=(MC,), out_dir=str(tmp_path), shots=2, shots_data=(MC_COMPETITION,)))
    assert cell.report["prompt"]["shots"] == 2 and cell.metrics["accuracy"] == pytest.approx(share_of_b(MC))


def test_cli_run(b_model, tmp_path, capsys):
    from evaluation.cli import main

    out = tmp_path / "results"
    args = ["run", "--model", str(b_model), "--data", MC, "--data", QA, "--out", str(out), "--limit", "5",
            "--max-new-tokens", "8", "--data-dir", str(tmp_path)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    first_five = load_dataset(MC).items[:5]
    assert "mc_sample acc" in printed and f"{100 * sum(i.answer == 'B' for i in first_five) / 5:.2f}" in printed
    files = sorted(p.name for p in out.glob("*/*/*"))
    assert files == ["items.jsonl"] * 2 + ["predictions.jsonl"] * 2 + ["report.json"] * 2 + ["settings.json"] * 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    assert main(["run", "--model", str(b_model), "--data", str(bad), "--out", str(out)]) == 3
    assert "bad.jsonl" in capsys.readouterr().err
    assert main(["run", "--model", str(b_model), "--data", MC, "--out", str(out), "--adapter", "nope"]) == 6
