"""Task metrics during training: the evaluator a training run calls at its evaluation points.

finetune/ never imports evaluation/ (DESIGN.md layering); jobs/ sits above both, and the job worker
(jobs/worker.py) hands the evaluator built here to finetune.train.train. It reads the validation sets
with evaluation's own readers and task records, and scores the model being trained with the Evaluate tab's methods:
likelihood of the option letters for multiple choice (one forward pass per batch, left padding, positions counted
from each row's first real token, as chat.registry.next_token_logits does), greedy generation with a token cap for
free-form answers, both scored by the task records (evaluation/tasks.py), so a number here means what it means in
the Evaluate tab and the scorer.

    build_evaluator(cfg) -> Evaluator        # reads and checks every set first: problems raise before training
    evaluator(model, tokenizer) -> {"accuracy:mc_val": 62.5, "rouge-l:qa_val": 31.2, ...}
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from evaluation.data import DataFileError, MCItem
from evaluation.prompts import PromptConfig, build_messages
from models.local.model import letter_token_ids
from evaluation.tasks import TASKS, get_task, load_dataset, score_mc_letters
from finetune.config import ConfigError, TrainConfig, eval_set_entries
from finetune.formats import DataError

BATCH_SIZE = 8


@dataclass
class TrainEvalSet:
    name: str
    path: str
    task: str
    items: list  # the fixed, seeded subset scored at every evaluation point
    total: int  # items in the file


@dataclass
class Evaluator:
    """Called with the model being trained; returns {metric:set: value}. `main_metrics` lists each set's headline."""

    sets: list[TrainEvalSet]
    max_new_tokens: int
    prompt: PromptConfig = field(default_factory=PromptConfig)

    @property
    def main_metrics(self) -> list[str]:
        return [f"{get_task(s.task).main_metric}:{s.name}" for s in self.sets]

    def describe(self) -> str:
        return "; ".join(f"{s.name} ({s.task}, {len(s.items)} of {s.total} items)" for s in self.sets)

    def __call__(self, model, tokenizer) -> dict[str, float]:
        import torch

        was_training, side = model.training, tokenizer.padding_side
        model.eval()
        tokenizer.padding_side = "left"  # the answer (or next token) follows the prompt's last real token
        try:
            with torch.no_grad():
                return {k: v for s in self.sets for k, v in self._score_set(model, tokenizer, s).items()}
        finally:
            tokenizer.padding_side = side
            model.train(was_training)

    def _score_set(self, model, tokenizer, eset: TrainEvalSet) -> dict[str, float]:
        task = get_task(eset.task)
        rows = []
        for start in range(0, len(eset.items), BATCH_SIZE):
            items = eset.items[start:start + BATCH_SIZE]
            prompts = [tokenizer.apply_chat_template(build_messages(task, i, self.prompt), tokenize=False,
                                                     add_generation_prompt=True) for i in items]
            if task.can_score_by_likelihood:  # the task's letters by likelihood, as Evaluate's default
                rows += mc_likelihood(model, tokenizer, items, prompts)
            else:
                rows += greedy_rows(model, tokenizer, task, items, prompts, self.max_new_tokens)
        summary = task.summarise_rows(rows)
        return {f"{metric}:{eset.name}": round(float(summary[metric]), 4) for metric in task.metrics}


def _encode(tokenizer, prompts: list[str], device):
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    return {k: v.to(device) for k, v in batch.items()}


def mc_likelihood(model, tokenizer, items: list[MCItem], prompts: list[str]) -> list[dict]:
    """The option letter whose first token scores highest after the prompt (softmax over the item's letters)."""
    import torch

    batch = _encode(tokenizer, prompts, model.device)
    mask = batch["attention_mask"]
    logits = model(input_ids=batch["input_ids"], attention_mask=mask,
                   position_ids=(mask.cumsum(-1) - 1).clamp(min=0), logits_to_keep=1).logits[:, -1].float()
    rows = []
    for item, row_logits in zip(items, logits):
        letters = list(item.options)
        probs = torch.softmax(row_logits[letter_token_ids(tokenizer, letters)], dim=-1).tolist()
        top = max(range(len(letters)), key=lambda i: (probs[i], -i))  # ties: the earlier letter, as Evaluate
        rows.append(score_mc_letters(item, letters[top]))
    return rows


def greedy_rows(model, tokenizer, task, items: list, prompts: list[str], max_new_tokens: int) -> list[dict]:
    """Greedy answers capped at max_new_tokens, scored by the task's own scoring (ROUGE / BLEU for free-form)."""
    batch = _encode(tokenizer, prompts, model.device)
    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                         pad_token_id=tokenizer.pad_token_id)
    texts = [t.strip() for t in tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:],
                                                       skip_special_tokens=True)]
    return task.score_answers(items, texts, [True] * len(texts))


def load_train_eval_sets(cfg: TrainConfig) -> list[TrainEvalSet]:
    """Every set read whole and checked before training: a bad row names its file, line and field; a set whose
    task is not the one asked for (its `task`, or the metric --select-by names) is named."""
    sets, seen = [], set()
    wanted = _task_wanted_by_selection(cfg.select_by)
    for entry in eval_set_entries(cfg.eval_sets):
        path, name = entry["path"], entry["name"]
        if entry.get("task") is not None and entry["task"] not in TASKS:
            raise ConfigError("eval_sets", f"{path} ({name}): task {entry['task']!r} is not one of {', '.join(TASKS)}")
        dataset = load_dataset(path)
        if dataset.problems:
            raise DataFileError(path, dataset.problems)
        if not dataset.items:
            raise ConfigError("eval_sets", f"{path}: no items to evaluate")
        expected = entry.get("task") or wanted.get(name)
        if expected and expected != dataset.task:
            raise ConfigError("eval_sets", f"{path} ({name}) reads as a {get_task(dataset.task).title} set "
                                           f"({dataset.task}), but {_why(entry, cfg)} expects {expected} "
                                           f"({get_task(expected).title})")
        if name in seen:
            raise ConfigError("eval_sets", f"two sets are named {name!r}; give one a `name`")
        seen.add(name)
        picked = sorted(random.Random(cfg.seed).sample(range(len(dataset.items)),
                                                      min(cfg.eval_limit, len(dataset.items))))
        sets.append(TrainEvalSet(name, str(path), dataset.task, [dataset.items[i] for i in picked],
                                 len(dataset.items)))
    names = {s.name for s in sets}
    if cfg.select_by and cfg.select_by != "eval_loss" and cfg.select_by.split(":", 1)[1] not in names:
        raise ConfigError("select_by", f"{cfg.select_by!r} names no validation set (sets: "
                                       f"{', '.join(sorted(names)) or 'none'})")
    return sets


def _task_wanted_by_selection(select_by: str) -> dict[str, str]:
    """--select-by accuracy:X says X is multiple choice; rouge-l:X (or another free-form metric) says free-form."""
    if not select_by or select_by == "eval_loss":
        return {}
    metric, name = select_by.split(":", 1)
    for task in TASKS.values():
        if metric in task.metrics:
            return {name: task.name}
    raise ConfigError("select_by", f"unknown metric {metric!r} (known: "
                                   f"{', '.join(m for t in TASKS.values() for m in t.metrics)}, or eval_loss)")


def _why(entry: dict, cfg: TrainConfig) -> str:
    return f"its `task: {entry['task']}`" if entry.get("task") else f"select_by {cfg.select_by!r}"


def build_evaluator(cfg: TrainConfig) -> Evaluator | None:
    """None when the run has no validation sets (then the run selects by eval_loss, as before)."""
    if not cfg.eval_sets:
        return None
    try:
        return Evaluator(load_train_eval_sets(cfg), cfg.eval_max_new_tokens)
    except DataFileError as exc:  # the job reports finetune's data error type: file, line and field in the text
        raise DataError(str(exc)) from None


def check_eval_sets(cfg: TrainConfig) -> list[str]:
    """What the CLI and the tab run before a job is created: the sets as they will be scored, one line each."""
    evaluator = build_evaluator(cfg)
    return [] if evaluator is None else [evaluator.describe()]

