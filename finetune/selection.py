"""The best checkpoint by the metric the user is judged on, and early stopping.

At every evaluation point (every `eval_every` steps, each epoch end and the last step) the callback asks the
evaluator it was given for task metrics (accuracy, ROUGE: see jobs/train_eval.py; finetune/ never imports
evaluation/) and reports them as a point of the curve. When the selected metric improves, the adapter weights are
saved to <checkpoints>/best/ and <checkpoints>/best.json says which step it was and every metric there (the Trainer
rotates only checkpoint-N folders). Both survive a stop: resume keeps the best so far, and the count of evaluations
without improvement that early stopping reads.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from transformers import TrainerCallback

from finetune.config import TrainConfig

Evaluator = Callable  # (model, tokenizer) -> {"accuracy:mc_val": 62.5, ...}


class SelectionCallback(TrainerCallback):
    def __init__(self, cfg: TrainConfig, tokenizer, reporter, evaluator: Evaluator | None, metric: str,
                 state_dir: Path, resume: bool):
        self.cfg, self.tokenizer, self.reporter, self.evaluator = cfg, tokenizer, reporter, evaluator
        self.best_dir, self.state_path = Path(state_dir) / "best", Path(state_dir) / "best.json"
        self.metric = metric
        self.higher_is_better = metric != "eval_loss"
        self.eval_seconds, self.last_eval_step, self.last_scores, self.skipped = 0.0, -1, {}, 0
        self.stopped_early = False
        state = self.read_best() if resume else None
        if state is not None and state.get("select_by") != metric:
            state = None  # another metric was chosen for the resumed run: its best so far means nothing here
        self.best = state or {"select_by": metric, "higher_is_better": self.higher_is_better, "step": None,
                              "value": None, "metrics": {}, "evals_since_best": 0}
        if state:
            print(f"[job] best so far: {metric}={state['value']} at step {state['step']}", flush=True)

    def read_best(self) -> dict | None:
        """The best so far as saved (None before the first evaluation, or when its weights are missing)."""
        if not self.state_path.is_file() or not (self.best_dir / "adapter_config.json").is_file():
            return None
        return json.loads(self.state_path.read_text(encoding="utf-8"))

    def on_train_begin(self, args, state, control, **kwargs):
        self.t0 = time.time()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        every = self.cfg.eval_every
        if (every and state.global_step % every == 0) or state.global_step == state.max_steps:
            self.evaluate(state, control, model)
        return control

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        self.evaluate(state, control, model)
        return control

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        if self.metric == "eval_loss" and metrics and "eval_loss" in metrics and state.is_world_process_zero:
            self.consider(state, control, model, {"eval_loss": metrics["eval_loss"]})
        return control

    def evaluate(self, state, control, model) -> None:
        """Task metrics of the adapter as it is now; logged as one point of the curve, then weighed for 'best'."""
        if self.evaluator is None or model is None or state.global_step == self.last_eval_step:
            return
        self.last_eval_step = state.global_step
        budget = self.cfg.eval_budget
        if budget and self.eval_seconds > budget * (time.time() - self.t0):
            # The cost stays bounded whatever N and K are: this point is skipped (and counted), not the run.
            self.skipped += 1
            share = self.eval_seconds / (time.time() - self.t0)
            print(f"[job] evaluation at step {state.global_step} skipped: evaluating has taken {share:.0%} of the "
                  f"run (eval_budget {budget:.0%})", flush=True)
            return
        started = time.time()
        scores = self.evaluator(model, self.tokenizer)
        spent = time.time() - started
        self.eval_seconds += spent
        row = {"step": state.global_step, "epoch": round(state.epoch or 0, 4), "time": round(time.time(), 3),
               **scores, "eval_seconds": round(spent, 3)}
        self.reporter.metric(row)
        print("[job] eval " + " ".join(f"{k}={v:.4g}" for k, v in scores.items()) + f" ({spent:.1f} s)", flush=True)
        self.last_scores = scores
        self.reporter.progress(task_metrics=scores, eval_seconds=round(self.eval_seconds, 3))
        if self.metric in scores:
            self.consider(state, control, model, scores)

    def consider(self, state, control, model, scores: dict[str, float]) -> None:
        value, best = scores[self.metric], self.best["value"]
        improved = best is None or (value > best if self.higher_is_better else value < best)
        if improved:
            self.save_best(model)
            self.best.update(step=state.global_step, value=value, metrics=dict(scores), evals_since_best=0)
        else:
            self.best["evals_since_best"] += 1
        tmp = self.state_path.with_name(".best.json.tmp")
        tmp.write_text(json.dumps(self.best, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.state_path)  # readers (compare, a resumed run) never see half a file
        self.reporter.progress(best_step=self.best["step"], best_value=self.best["value"], select_by=self.metric)
        patience = self.cfg.early_stop
        if patience and self.best["evals_since_best"] >= patience:
            self.stopped_early = True
            control.should_training_stop = True
            print(f"[job] stopping early: {self.metric} did not improve in {patience} evaluations "
                  f"(best {best} at step {self.best['step']})", flush=True)

    def save_best(self, model) -> None:
        """Replace <job>/best with the adapter as it is now; a crash midway leaves the old best or the new one."""
        final = self.best_dir
        tmp, old = final.with_name(".best.tmp"), final.with_name(".best.old")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)

    def summary(self, last_step: int) -> dict:
        """What the adapter's selection.json and the final status say about the choice and its cost."""
        run_s = max(time.time() - self.t0, 1e-9)
        return {**self.best, "last_step": last_step, "stopped_early": self.stopped_early,
                "eval_seconds": round(self.eval_seconds, 3), "run_seconds": round(run_s, 3),
                "eval_share": round(self.eval_seconds / run_s, 4), "evaluations_skipped": self.skipped}
