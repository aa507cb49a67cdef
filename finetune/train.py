"""One training run, as it runs inside its job process: model + LoRA, data, Hugging Face Trainer, adapter on disk.

The path is deliberately plain (torchtune style): load, prepare, train, save. Everything a user watches lives in the
job directory (see finetune/jobs.py): status.json, metrics.jsonl, samples.jsonl, train.log and checkpoints/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from finetune.atomic import atomic_dir
from finetune.config import ConfigError, TrainConfig, resolved_precision
from finetune.demo_model import resolve_model
from finetune.formats import DataError, load_data, split_conversations
from finetune.jobs import JobFiles, is_writer, write_json_atomic
from finetune.tokenization import (
    ListDataset, PackedCollator, PadCollator, as_features, encode_all, ensure_chat_template, pack,
)

ATTENTION_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]


class StopFlag:
    """Set by SIGTERM (the Stop button): the trainer saves a checkpoint at the end of the current step and stops."""

    def __init__(self):
        self.set = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        self.set = True
        print(f"[job] signal {signum}: stopping after the current step (a checkpoint is saved)", flush=True)


def load_model_and_tokenizer(cfg: TrainConfig):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
    if ensure_chat_template(tokenizer):
        print(f"[job] {cfg.model} has no chat template: using ChatML", flush=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[resolved_precision(cfg)]
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


def prepare_data(cfg: TrainConfig, tokenizer, files: JobFiles) -> tuple[list[dict], list[dict], dict]:
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
    if is_writer():
        write_json_atomic(files.data_report, report)
    print(f"[job] {loaded.summary()}; {report['truncated']} truncated to cutoff_len={cfg.cutoff_len}; "
          f"{len(train_rows)} training rows ({'packed' if cfg.packing else 'one conversation each'})", flush=True)
    for rejected in loaded.rejected[:20]:
        print(f"[job] rejected {rejected}", flush=True)
    return as_features(train_rows), as_features(val_rows), report


def training_arguments(cfg: TrainConfig, files: JobFiles, has_val: bool):
    import torch
    from transformers import TrainingArguments

    precision = resolved_precision(cfg)
    evaluate = has_val and cfg.eval_steps > 0
    return TrainingArguments(
        output_dir=str(files.checkpoints),
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


def build_trainer(cfg: TrainConfig, model, tokenizer, train: list[dict], val: list[dict], files: JobFiles,
                  stop: StopFlag, data_report: dict):
    from transformers import PrinterCallback, Trainer

    from finetune.progress import ProgressCallback

    collator = (PackedCollator if cfg.packing else PadCollator)(tokenizer.pad_token_id)
    trainer = Trainer(
        model=model,
        args=training_arguments(cfg, files, bool(val)),
        train_dataset=ListDataset(train),
        eval_dataset=ListDataset(val) if val else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[ProgressCallback(cfg, tokenizer, files, stop, data_report)],
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


def write_adapter(model, cfg: TrainConfig, files: JobFiles, final: Path) -> Path:
    """Atomic: everything goes into a temp dir beside the final one, which is renamed into place at the end."""
    if final.exists():  # another run took the name meanwhile: never overwrite someone's adapter
        final = final.with_name(f"{final.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    with atomic_dir(final) as tmp:
        model.save_pretrained(tmp)
        record_base_reference(tmp / "adapter_config.json", cfg.model)
        cfg.save(tmp / "train_config.yaml")
        if files.metrics.exists():
            shutil.copyfile(files.metrics, tmp / "metrics.jsonl")
        if files.data_report.exists():
            shutil.copyfile(files.data_report, tmp / "data_report.json")
    return final


def run(job_dir: Path, resume: bool = False) -> int:
    """The body of a job process. Returns the exit code; the outcome is in status.json either way."""
    files = JobFiles(Path(job_dir))
    stop = StopFlag()
    stop.install()
    # The process Stop signals: this one, or under torchrun / accelerate launch the launcher (the ranks' parent),
    # which passes the signal on to every rank and ends them all when one fails.
    launched = "TORCHELASTIC_RUN_ID" in os.environ
    files.update_status(state="loading", pid=os.getppid() if launched else os.getpid(), error=None,
                        started_at=time.time())
    try:
        cfg = TrainConfig.load(files.config).validate()
        outcome = _train(cfg, files, stop, resume)
    except (ConfigError, DataError) as exc:
        print(f"[job] error: {exc}", flush=True)
        files.update_status(state="failed", error=str(exc))
        return 2
    except BaseException as exc:  # noqa: BLE001 - a crashed job must say why in status.json, then exit
        traceback.print_exc()
        files.update_status(state="failed", error=f"{type(exc).__name__}: {exc}")
        return 1
    if outcome:
        files.update_status(**outcome)
    return 0


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
        if is_writer():
            print(f"[job] removing {path.name}: incomplete (the job ended while saving it)", flush=True)
            shutil.rmtree(path, ignore_errors=True)
    return None


def _train(cfg: TrainConfig, files: JobFiles, stop: StopFlag, resume: bool) -> dict:
    from transformers import set_seed

    set_seed(cfg.seed)
    model, tokenizer = load_model_and_tokenizer(cfg)
    train, val, report = prepare_data(cfg, tokenizer, files)
    model = attach_lora(model, cfg)
    checkpoint = last_complete_checkpoint(files.checkpoints) if resume else None
    if resume:
        print(f"[job] resuming from {checkpoint or 'the start (no checkpoint was saved)'}", flush=True)
    if resume and is_writer():
        files.truncate_metrics(int(Path(checkpoint).name.split("-")[-1]) if checkpoint else 0)
    if stop.set:
        return {"state": "stopped"}
    trainer = build_trainer(cfg, model, tokenizer, train, val, files, stop, report)
    files.update_status(state="training", resumed_from=checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)
    if stop.set:
        return {"state": "stopped", "finished_at": time.time()}
    last_eval = [m for m in trainer.state.log_history if "eval_loss" in m]
    if val and (not last_eval or last_eval[-1].get("step") != trainer.state.global_step):
        trainer.evaluate()  # the curve always ends with a validation point
    if not trainer.is_world_process_zero():
        return {}  # under torchrun / accelerate launch only rank 0 writes the adapter and the final status
    files.update_status(state="saving")
    final = Path(cfg.output_dir) if cfg.output_dir else files.default_adapter_dir(cfg)
    adapter = write_adapter(trainer.model, cfg, files, final)
    print(f"[job] adapter saved to {adapter}", flush=True)
    return {"state": "completed", "adapter_dir": str(adapter), "finished_at": time.time()}
