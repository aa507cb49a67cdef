"""The Trainer callback that makes a run watchable: progress, the loss curve and sample answers go to the run's
Reporter (finetune/train.py), and the reporter's should-stop ends the run at the end of a step with a checkpoint."""

from __future__ import annotations

import time

from transformers import TrainerCallback

from finetune.config import TrainConfig


def _any_rank(flag: bool) -> bool:
    """True on every rank when any rank has it: under torchrun the signal may reach the ranks a step apart, and a rank
    that stopped alone would leave the others waiting in their next gradient all-reduce for ever."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([int(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


class ProgressCallback(TrainerCallback):
    def __init__(self, cfg: TrainConfig, tokenizer, reporter):
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.reporter = reporter  # finetune.train.Reporter
        self.stopped = False  # asked to stop (on any rank): the run ended early, with a checkpoint of its step
        self.last_status = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.t0 = self.t_log = time.time()
        self.step0 = state.global_step  # > 0 after a resume: rates and ETA count this session only
        self.tokens_log = state.num_input_tokens_seen
        self.tokens_per_s = None
        if state.is_world_process_zero:
            self.reporter.progress(step=state.global_step, total_steps=state.max_steps)

    def _eta(self, state) -> float | None:
        done = state.global_step - self.step0
        if done <= 0:
            return None
        return (time.time() - self.t0) / done * (state.max_steps - state.global_step)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == state.max_steps and state.global_step % args.logging_steps:
            control.should_log = True  # the curve and the status always end on the last step's loss
        if _any_rank(self.reporter.should_stop()):
            self.stopped = True  # on every rank: train() then ends the run on all of them alike
            # Saving here keeps the work done so far: Resume continues from this very step.
            control.should_save = True
            control.should_training_stop = True
        if not state.is_world_process_zero:
            return control  # one writer for the job files under torchrun / accelerate launch
        if time.time() - self.last_status > 1.0 or state.global_step == state.max_steps:
            self.last_status = time.time()
            self.reporter.progress(
                step=state.global_step, total_steps=state.max_steps, epoch=state.epoch,
                tokens_per_s=self.tokens_per_s, eta_s=self._eta(state),
            )
        every = self.cfg.sample_every
        if every and self.cfg.sample_prompts and state.global_step % every == 0 and model is not None:
            self.write_samples(model, state.global_step)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero:
            return
        logs = logs or {}
        now = time.time()
        row: dict = {"step": state.global_step, "epoch": round(state.epoch or 0, 4), "time": round(now, 3)}
        if "loss" in logs:
            tokens = state.num_input_tokens_seen
            self.tokens_per_s = (tokens - self.tokens_log) / max(now - self.t_log, 1e-9)
            self.tokens_log, self.t_log = tokens, now
            row.update(loss=logs["loss"], learning_rate=logs.get("learning_rate"), grad_norm=logs.get("grad_norm"),
                       tokens_seen=tokens, tokens_per_s=round(self.tokens_per_s, 1), eta_s=self._eta(state))
            self.reporter.progress(loss=logs["loss"], tokens_per_s=self.tokens_per_s, eta_s=row["eta_s"],
                                     step=state.global_step, total_steps=state.max_steps)
        elif "eval_loss" in logs:
            row.update(eval_loss=logs["eval_loss"])
            self.reporter.progress(eval_loss=logs["eval_loss"])
        else:
            return  # the end-of-training summary: not a point on the curve
        self.reporter.metric(row)
        print("[job] " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in row.items() if k != "time" and v is not None), flush=True)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        every = self.cfg.sample_every
        if not state.is_world_process_zero or self.stopped:
            return
        if every and self.cfg.sample_prompts and model is not None and state.global_step % every:
            self.write_samples(model, state.global_step)

    def write_samples(self, model, step: int) -> None:
        """Greedy answers to the fixed prompts: the quickest way to see whether the run is learning anything."""
        import torch

        was_training = model.training
        model.eval()
        try:
            for prompt in self.cfg.sample_prompts:
                messages = [{"role": "user", "content": prompt}]
                ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                         return_dict=True)
                ids = {k: v.to(model.device) for k, v in ids.items()}
                with torch.no_grad():
                    out = model.generate(**ids, max_new_tokens=self.cfg.sample_max_new_tokens, do_sample=False,
                                         pad_token_id=self.tokenizer.pad_token_id, use_cache=True)
                answer = self.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
                self.reporter.sample({"step": step, "prompt": prompt, "answer": answer})
        finally:
            model.train(was_training)
