"""One training run: model + LoRA, data, Hugging Face Trainer, adapter on disk.

The path is deliberately plain (torchtune style): load, prepare, train, save. `train` takes a config, where to keep
checkpoints and the adapter, and a `Reporter` (progress, metrics, samples, should-stop); it knows nothing of jobs,
queues or status files. jobs/worker.py runs it inside a job process with a reporter that writes the job folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from finetune.atomic import atomic_dir
from finetune.config import ConfigError, TrainConfig, resolved_precision, select_metric
from finetune.demo_model import resolve_model
from models.preflight import preflight
from models.refs import record_adapter_base
from finetune.formats import DataError, load_data, split_conversations
from finetune.tokenization import (
    ListDataset, PackedCollator, PadCollator, as_features, encode_all, ensure_chat_template, pack,
)

ATTENTION_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]


class Reporter:
    """What a run tells whoever watches it, and the one thing it asks them (should it stop?). This base reports
    nothing and never stops: a plain library call. Under torchrun / accelerate launch every rank gets one; the
    trainer calls the reporting methods on rank 0 only."""

    def stage(self, stage: str, **details) -> None:
        """loading, training, saving: what the run is doing now (details: e.g. resumed_from)."""

    def progress(self, **values) -> None:
        """step, total_steps, epoch, tokens_per_s, eta_s, loss, eval_loss: any of them."""

    def metric(self, row: dict) -> None:
        """A point on the curves: a log step (loss, learning rate, tokens/s) or an evaluation (eval_loss)."""

    def sample(self, row: dict) -> None:
        """A greedy answer to one of the fixed prompts at a step."""

    def data_report(self, report: dict) -> None:
        """Rows read, kept, rejected (with line and reason), truncated."""

    def resumed_at(self, step: int) -> None:
        """Training continues from `step`: points reported after it before are trained again."""

    def should_stop(self) -> bool:
        return False

    def artifacts(self) -> list[Path]:
        """Files to keep beside the adapter (the curve's metrics, the data report)."""
        return []


def rank_zero() -> bool:
    return os.environ.get("RANK", "0") == "0"


def load_model_and_tokenizer(cfg: TrainConfig):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(cfg.model)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[resolved_precision(cfg)]
    # Before any weight is read (each rank checks its own GPU): a model that cannot load here fails with a message
    # naming it and what to do, not a transformers traceback or the kernel's OOM killer.
    device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu"
    preflight(cfg.model, path, trust_remote_code=cfg.trust_remote_code, dtype=dtype, device=device,
              load_in_4bit=cfg.load_in_4bit)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
    if ensure_chat_template(tokenizer):
        print(f"[job] {cfg.model} has no chat template: using ChatML", flush=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs = {"dtype": dtype, "trust_remote_code": cfg.trust_remote_code}
    if cfg.load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype
        )
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    model.config.use_cache = False  # no KV cache in training (memory; and packing needs it off, see PackedCollator)
    return model, tokenizer


def attach_lora(model, cfg: TrainConfig):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    targets = cfg.lora_targets.strip()
    if targets == "attention":
        targets = ATTENTION_MODULES
    elif targets != "all-linear":
        targets = [t.strip() for t in targets.split(",")]
    lora = LoraConfig(
        r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=targets, task_type="CAUSAL_LM",
    )
    try:
        model = get_peft_model(model, lora)
    except ValueError as exc:  # peft names the modules it could not find
        raise ConfigError("lora_targets", str(exc)) from None
    return model


def prepare_data(cfg: TrainConfig, tokenizer, reporter: Reporter) -> tuple[list[dict], list[dict], dict]:
    """Load, split, encode and (optionally) pack; write the data report; every dropped row is in it."""
    loaded = load_data(cfg.data, cfg.data_format, cfg.column_map or None, cfg.max_samples, cfg.dedup)
    train_convs, val_convs = split_conversations(loaded.conversations, cfg.val_split, cfg.seed)
    train_rows, train_stats = encode_all(tokenizer, train_convs, cfg.cutoff_len)
    val_rows, val_stats = encode_all(tokenizer, val_convs, cfg.cutoff_len)
    if not train_rows:
        raise DataError(f"{cfg.data}: no usable training row ({loaded.summary()})")
    if cfg.packing:
        pack_len = cfg.pack_len or cfg.cutoff_len
        train_rows, val_rows = pack(train_rows, pack_len), pack(val_rows, pack_len)
    report = {
        "summary": loaded.summary(), "format": loaded.format, "rows_read": loaded.total_rows,
        "kept": len(loaded.conversations), "train": len(train_convs), "validation": len(val_convs),
        "rejected": [asdict(r) for r in loaded.rejected],
        "truncated": train_stats.truncated + val_stats.truncated,
        "dropped_after_truncation": [{"line": line, "reason": why} for line, why in train_stats.dropped + val_stats.dropped],
        "train_tokens": train_stats.tokens, "trained_tokens": train_stats.trained_tokens,
        "rows_per_step": cfg.batch_size * cfg.grad_accum, "train_rows": len(train_rows), "packing": cfg.packing,
    }
    if rank_zero():
        reporter.data_report(report)
    print(f"[job] {loaded.summary()}; {report['truncated']} truncated to cutoff_len={cfg.cutoff_len}; "
          f"{len(train_rows)} training rows ({'packed' if cfg.packing else 'one conversation each'})", flush=True)
    for rejected in loaded.rejected[:20]:
        print(f"[job] rejected {rejected}", flush=True)
    return as_features(train_rows), as_features(val_rows), report


def training_arguments(cfg: TrainConfig, checkpoint_dir: Path, has_val: bool):
    import torch
    from transformers import TrainingArguments

    precision = resolved_precision(cfg)
    evaluate = has_val and cfg.eval_steps > 0
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a ratio of the total steps in transformers 5
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        num_train_epochs=cfg.num_epochs,
        max_steps=cfg.max_steps or -1,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        # Without a GPU the Trainer must be told it runs on the CPU, else a chosen bf16 is refused ("Your setup
        # doesn't support bf16/gpu") instead of running the CPU's own bf16 autocast.
        use_cpu=not (torch.cuda.is_available() or torch.backends.mps.is_available()),
        # transformers 5 name for gradient checkpointing; non-reentrant works with frozen (LoRA) base weights
        activation_checkpointing=cfg.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        dataloader_pin_memory=torch.cuda.is_available(),
        logging_steps=cfg.logging_steps,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=cfg.eval_steps if evaluate else None,
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        save_total_limit=cfg.save_total_limit,
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to="none",
        disable_tqdm=True,  # progress goes to metrics.jsonl / status.json, not carriage returns in a log file
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
    )


def build_trainer(cfg: TrainConfig, model, tokenizer, train: list[dict], val: list[dict], checkpoint_dir: Path,
                  progress, selection=None):
    from transformers import PrinterCallback, Trainer

    collator = (PackedCollator if cfg.packing else PadCollator)(tokenizer.pad_token_id)
    trainer = Trainer(
        model=model,
        args=training_arguments(cfg, checkpoint_dir, bool(val)),
        train_dataset=ListDataset(train),
        eval_dataset=ListDataset(val) if val else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[progress] + ([selection] if selection else []),
    )
    trainer.remove_callback(PrinterCallback)  # ProgressCallback prints one compact line per log instead
    return trainer


def record_base_reference(adapter_config: Path, model_ref: str) -> None:
    """The adapter records the reference the user gave ("demo", a hub id), not this machine's cache path.

    Set only in the saved file: during training peft keeps the resolved local path, so its save-time checks read
    the local config instead of asking the hub about "demo".
    """
    config = json.loads(adapter_config.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = model_ref
    adapter_config.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    record_adapter_base(adapter_config.parent, model_ref)  # and the hub it came from (models/refs.py)


def write_adapter(model, cfg: TrainConfig, final: Path, artifacts: list[Path], weights_from: Path | None = None,
                  selection: dict | None = None) -> Path:
    """Atomic: everything goes into a temp dir beside the final one, which is renamed into place at the end.
    `weights_from`: a saved adapter (the best checkpoint) to take the weights from instead of `model`;
    `selection`: written as selection.json (which step these weights are, and every metric there)."""
    if final.exists():  # another run took the name meanwhile: never overwrite someone's adapter
        final = final.with_name(f"{final.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    with atomic_dir(final) as tmp:
        if weights_from is not None:
            for path in weights_from.iterdir():
                if path.is_file():
                    shutil.copyfile(path, tmp / path.name)
        else:
            model.save_pretrained(tmp)
        if selection is not None:
            (tmp / "selection.json").write_text(json.dumps(selection, ensure_ascii=False, indent=1), encoding="utf-8")
        record_base_reference(tmp / "adapter_config.json", cfg.model)
        cfg.save(tmp / "train_config.yaml")
        for path in artifacts:
            if path.exists():
                shutil.copyfile(path, tmp / path.name)
    return final


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint the Trainer finished writing (trainer_state.json is its last file). A job killed while
    saving (out of memory, a server restart) leaves a partial checkpoint-N that Resume must not load: it is removed."""
    if not folder.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in folder.iterdir()
                   if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name)))
    for _, path in reversed(found):
        if (path / "trainer_state.json").is_file():
            return str(path)
        if rank_zero():
            print(f"[job] removing {path.name}: incomplete (the job ended while saving it)", flush=True)
            shutil.rmtree(path, ignore_errors=True)
    return None


def train(cfg: TrainConfig, reporter: Reporter, checkpoint_dir: Path, adapter_dir: Path,
          resume: bool = False, evaluator=None) -> dict:
    """The run, top to bottom. Returns the outcome: {"state": "completed", "adapter_dir"}, {"state": "stopped"}
    (the reporter asked; a checkpoint of the last step is kept for Resume), or {} on ranks other than 0.

    `evaluator`: (model, tokenizer) -> {"accuracy:SET": value, ...}, the task metrics of the validation sets, built
    above finetune/ (jobs/train_eval.py: finetune never imports evaluation); None when the run names no sets."""
    from transformers import set_seed

    from finetune.progress import ProgressCallback
    from finetune.selection import SelectionCallback

    set_seed(cfg.seed)
    model, tokenizer = load_model_and_tokenizer(cfg)
    train_rows, val_rows, _ = prepare_data(cfg, tokenizer, reporter)
    model = attach_lora(model, cfg)
    checkpoint = last_complete_checkpoint(checkpoint_dir) if resume else None
    if resume:
        print(f"[job] resuming from {checkpoint or 'the start (no checkpoint was saved)'}", flush=True)
    if resume and rank_zero():
        reporter.resumed_at(int(Path(checkpoint).name.split("-")[-1]) if checkpoint else 0)
    if reporter.should_stop():
        return {"state": "stopped"}
    progress = ProgressCallback(cfg, tokenizer, reporter)
    # Which checkpoint becomes the adapter: a task metric when validation sets are scored, else eval loss, else
    # simply the last one (no validation at all).
    metric = select_metric(cfg, evaluator.main_metrics if evaluator else [])
    selection = None
    # One process only: under torchrun the ranks would have to agree on every early stop (see README).
    if cfg.processes == 1 and (evaluator is not None or (val_rows and metric == "eval_loss")):
        selection = SelectionCallback(cfg, tokenizer, reporter, evaluator, metric, checkpoint_dir, resume)
        print(f"[job] the adapter is the checkpoint with the best {metric}"
              + (f"; scoring {evaluator.describe()}" if evaluator else ""), flush=True)
    trainer = build_trainer(cfg, model, tokenizer, train_rows, val_rows, checkpoint_dir, progress, selection)
    reporter.stage("training", resumed_from=checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)
    if progress.stopped:  # not should_stop(): under torchrun the request may have reached another rank only
        return {"state": "stopped", "finished_at": time.time()}
    last_eval = [m for m in trainer.state.log_history if "eval_loss" in m]
    if val_rows and (not last_eval or last_eval[-1].get("step") != trainer.state.global_step):
        trainer.evaluate()  # the curve always ends with a validation point
    if not trainer.is_world_process_zero():
        return {}  # under torchrun / accelerate launch only rank 0 writes the adapter and the final status
    reporter.stage("saving")
    return save_outcome(trainer, cfg, adapter_dir, reporter.artifacts(), selection)


def save_outcome(trainer, cfg: TrainConfig, final: Path, artifacts: list[Path], selection) -> dict:
    """The adapter under its name: the best checkpoint when one was selected, with the last beside it as
    <name>-last; the outcome says which step won, whether the run stopped early, and what evaluating cost."""
    best = selection.read_best() if selection is not None else None
    if best is None:  # nothing was selected (no validation): the adapter is the last state
        adapter = write_adapter(trainer.model, cfg, final, artifacts)
        print(f"[job] adapter saved to {adapter}", flush=True)
        return {"state": "completed", "adapter_dir": str(adapter), "finished_at": time.time()}
    summary = selection.summary(trainer.state.global_step)
    last = write_adapter(trainer.model, cfg, final.with_name(f"{final.name}-last"), artifacts,
                         selection={"this_is": "last", "step": trainer.state.global_step,
                                    "metrics": selection.last_scores, "best_step": best["step"],
                                    "select_by": best["select_by"], "best_value": best["value"]})
    adapter = write_adapter(trainer.model, cfg, final, artifacts, weights_from=selection.best_dir,
                            selection={**summary, "this_is": "best", "last_dir": str(last)})
    print(f"[job] adapter saved to {adapter}: step {best['step']} of {trainer.state.global_step}, best "
          f"{best['select_by']}={best['value']}; the last step's adapter is {last}; evaluating took "
          f"{summary['eval_share']:.1%} of the run" + (" (stopped early)" if summary["stopped_early"] else ""),
          flush=True)
    return {"state": "completed", "adapter_dir": str(adapter), "last_adapter_dir": str(last),
            "best_step": best["step"], "best_value": best["value"], "select_by": best["select_by"],
            "stopped_early": summary["stopped_early"], "eval_share": summary["eval_share"],
            "eval_seconds": summary["eval_seconds"], "evaluations_skipped": summary["evaluations_skipped"],
            "finished_at": time.time()}
