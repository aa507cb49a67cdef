"""Task metrics during training (issue 13), real CPU runs on the tiny model: the best checkpoint by accuracy becomes
the adapter (not the last one), early stopping fires, resume keeps the best so far; bad or wrong-task validation
sets are refused before any training."""

import json
import types
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from evaluation.prompts import PromptConfig
from finetune.__main__ import main
from finetune.config import TrainConfig
from finetune.demo_model import DEFAULT_SYSTEM
from jobs.files import create_job, read_jsonl
from jobs.worker import run

OPTIONS = {"A": "休息", "B": "手术", "C": "输液", "D": "观察"}
# Six training questions answered A, three answered B; the validation questions are near copies of the B ones but
# keyed A. The random model gets them wrong; the first steps learn "A" (accuracy 100) and memorising the B
# questions later can only pull them away: the best checkpoint comes early, and later ones are no better.
PRIOR = ["头痛发热应该怎么办", "感冒咳嗽可以吃什么", "失眠怎么调理", "胃痛反酸怎么办", "高血压饮食注意什么", "糖尿病症状是什么"]
TRAPS = ["腰痛三天不能弯腰", "膝盖肿痛走路困难", "手指割伤流血不止"]
NEAR = ["腰痛五天不能弯腰", "膝盖肿痛走路费力", "手指割伤流血很多", "头晕乏力怎么办"]


def _conversation(question: str, answer: str) -> dict:
    user = PromptConfig().mc_template.format(
        question=question, options="\n".join(f"{k}. {v}" for k, v in OPTIONS.items()), kind="单项选择题")
    return {"messages": [{"role": "system", "content": DEFAULT_SYSTEM}, {"role": "user", "content": user},
                         {"role": "assistant", "content": answer}]}


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def mc_data(tmp_path):
    train = _write_jsonl(tmp_path / "train.jsonl", [_conversation(q, "A") for q in PRIOR]
                         + [_conversation(q, "B") for q in TRAPS])
    val = _write_jsonl(tmp_path / "mc_val.jsonl", [{"id": f"v{i}", "question": q, "options": OPTIONS, "answer": "A"}
                                                   for i, q in enumerate(NEAR)])
    return train, val


def _config(model, train, val, **changes) -> TrainConfig:
    # One step is one epoch (batch 9 = the whole set): an evaluation after every step, a checkpoint at every step.
    values = dict(model=str(model), data=str(train), val_split=0, learning_rate=1e-2, batch_size=9, lora_rank=16,
                  lora_alpha=32, lora_dropout=0.0, warmup_ratio=0.0, lr_scheduler="constant", logging_steps=1,
                  save_steps=1, save_total_limit=100, sample_every=0, cutoff_len=256, packing=False,
                  eval_sets=[str(val)], eval_limit=8, select_by="accuracy:mc_val", eval_budget=0.0)
    return TrainConfig(**{**values, **changes})


def _weights(folder: Path) -> dict:
    return load_file(str(folder / "adapter_model.safetensors"))


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


def test_best_checkpoint_becomes_the_adapter_and_early_stop_fires(tmp_path, tiny_chat_model, mc_data, capsys):
    files = create_job(_config(tiny_chat_model, *mc_data, max_steps=10, early_stop=2, adapter_name="mc"),
                       tmp_path / "runs")
    assert run(files.dir) == 0
    status = files.read_status()
    assert status["state"] == "completed" and status["stopped_early"], status
    curve = [(r["step"], r["accuracy:mc_val"]) for r in read_jsonl(files.metrics) if "accuracy:mc_val" in r]
    assert curve[0][1] < 100.0 and max(v for _, v in curve) == 100.0, curve  # the task metric rises
    best = max(curve, key=lambda point: (point[1], -point[0]))[0]  # the first step at the top
    last = curve[-1][0]
    assert status["best_step"] == best < last == status["step"] < 10  # stopped early, 2 evaluations after the best
    assert len([s for s, _ in curve if s > best]) == 2

    adapter, last_dir = Path(status["adapter_dir"]), Path(status["last_adapter_dir"])
    assert last_dir.name == "mc-last" and adapter.name == "mc"
    checkpoints = files.checkpoints
    # The adapter holds the best step's weights (as the Trainer saved them at that step), the -last dir the last's.
    assert _same(_weights(adapter), _weights(checkpoints / f"checkpoint-{best}"))
    assert _same(_weights(last_dir), _weights(checkpoints / f"checkpoint-{last}"))
    assert not _same(_weights(adapter), _weights(last_dir))
    selection = json.loads((adapter / "selection.json").read_text())
    assert selection["step"] == best and selection["metrics"] == {"accuracy:mc_val": 100.0}
    assert selection["select_by"] == "accuracy:mc_val" and selection["stopped_early"]
    assert 0 < selection["eval_share"] < 1

    # python -m finetune compare: one row per run, the selected step and the best value; a PNG chart on request.
    capsys.readouterr()
    assert main(["compare", str(files.dir), str(last_dir), "--chart", str(tmp_path / "chart.png")]) == 0
    out = capsys.readouterr().out.splitlines()
    header = ["run", "lr", "rank", "steps", "selected_step", "select_by", "best accuracy:mc_val"]
    assert out[0].split("\t")[:7] == header
    assert out[1].split("\t")[4] == str(best) and out[1].split("\t")[6] == "100"
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"

    # The Fine-tune tab's plot: the task metric beside the loss, and the best step marked; its status line.
    from jobs.progress import JobProgress, read_progress
    from ui.finetune_tab import loss_frame, status_text

    frame = loss_frame(read_progress(files))
    assert {"train", "accuracy:mc_val /100", f"best accuracy:mc_val @ {best}"} <= set(frame["series"])
    assert sorted(frame[frame["series"] == f"best accuracy:mc_val @ {best}"]["loss"]) == [0.0, 1.0]
    text = status_text(JobProgress.from_record(status), "en")
    assert f"Best accuracy:mc_val = 100 at step {best}" in text and "Stopped early" in text


def test_resume_keeps_the_best_so_far(tmp_path, tiny_chat_model, mc_data):
    files = create_job(_config(tiny_chat_model, *mc_data, max_steps=3, adapter_name="mc"), tmp_path / "runs")
    assert run(files.dir) == 0
    first = json.loads((files.checkpoints / "best.json").read_text())
    assert first["value"] == 100.0 and first["step"] < 3
    # Continue the run for two more steps from its last checkpoint (as Resume does after a Stop).
    config = yaml.safe_load(files.config.read_text())
    files.config.write_text(yaml.safe_dump({**config, "max_steps": 5}, allow_unicode=True))
    files.update_status(state="stopped")
    assert run(files.dir, resume=True) == 0
    status = files.read_status()
    assert status["state"] == "completed" and status["step"] == 5
    assert status["best_step"] == first["step"], status  # steps 4-5 are no better: the earlier best stays
    assert _same(_weights(Path(status["adapter_dir"])), _weights(files.checkpoints / f"checkpoint-{first['step']}"))


def test_malformed_eval_file_is_refused_before_training(tmp_path, tiny_chat_model, mc_data, capsys):
    train, _ = mc_data
    bad = tmp_path / "mc_bad.jsonl"
    bad.write_text(json.dumps({"question": "q1", "options": OPTIONS, "answer": "A"}, ensure_ascii=False) + "\n"
                   + json.dumps({"question": "q2", "options": OPTIONS, "answer": "Z"}, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    code = main(["train", "--model", str(tiny_chat_model), "--data", str(train), "--eval-data", str(bad),
                 "--data-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 3 and f"{bad}:2" in err and "answer" in err, err  # an input file is malformed
    assert not (tmp_path / "runs" / "jobs").exists()  # refused before any job (or training) existed


def test_eval_set_of_another_task_is_named(tmp_path, tiny_chat_model, mc_data, capsys):
    train, _ = mc_data
    qa = _write_jsonl(tmp_path / "qa_val.jsonl", [{"input": "头痛怎么办", "output": "多休息"}] * 2)
    code = main(["train", "--model", str(tiny_chat_model), "--data", str(train), "--eval-data", str(qa),
                 "--select-by", "accuracy:qa_val", "--data-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "qa_val" in err and "free-form" in err and "accuracy:qa_val" in err, err
    cfg = _config(tiny_chat_model, train, qa, select_by="", eval_sets=[{"path": str(qa), "task": "mc"}])
    files = create_job(cfg, tmp_path / "runs2")
    assert run(files.dir) == 2  # the job refuses it too, before training
    status = files.read_status()
    assert status["state"] == "failed" and "qa_val" in status["error"] and "task: mc" in status["error"]
    assert not files.checkpoints.exists()


def test_eval_budget_skips_evaluation_points(tmp_path, tiny_chat_model, mc_data):
    """A cap of 1% of the run: after the first evaluation the later points are skipped (counted, not failed)."""
    files = create_job(_config(tiny_chat_model, *mc_data, max_steps=4, eval_budget=0.01), tmp_path / "runs")
    assert run(files.dir) == 0
    status = files.read_status()
    evaluated = [r["step"] for r in read_jsonl(files.metrics) if "accuracy:mc_val" in r]
    assert status["state"] == "completed" and evaluated[0] == 1 and len(evaluated) < 4, evaluated
    assert status["evaluations_skipped"] == 4 - len(evaluated) >= 1


def test_tab_offers_only_bundled_eval_sets(tmp_path):
    import gradio as gr

    from ui.finetune_tab import eval_sample_files, eval_set_paths

    ctx = types.SimpleNamespace(sample_dir=Path(__file__).resolve().parent.parent / "data", lang="en")
    assert {"mc_sample.jsonl", "qa_sample.jsonl"} <= set(eval_sample_files(ctx))
    assert eval_set_paths(["mc_sample.jsonl"], ctx) == [str(ctx.sample_dir / "mc_sample.jsonl")]
    with pytest.raises(gr.Error):
        eval_set_paths(["../../etc/passwd"], ctx)  # a name sent through the API is never a path of its own
