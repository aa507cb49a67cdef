"""TrainConfig: the one contract between the UI, the CLI and a training job. Loads from and saves to YAML."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path

from safeio.problems import Problem

SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
LORA_TARGET_PRESETS = ("all-linear", "attention")  # or a comma-separated list of module names
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ConfigError(ValueError):
    """A TrainConfig value that cannot work; the message names the field. With a `code` (a sentence of
    safeio.problems.MESSAGES) and its params it is also a problem, so the page says it in its own language."""

    def __init__(self, field_name: str, reason: str, source: str = "", code: str = "", **params):
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field_name}: {reason}")
        self.field, self.reason, self.source, self.code, self.params = field_name, reason, source, code, params
        self.problem = Problem(None, None, "config", reason, file=source or None, field=field_name,
                               params=params, say=code) if code else None

    def __reduce__(self):  # crosses the worker process boundary with its code
        return _config_error, (self.field, self.reason, self.source, self.code, self.params)


def _config_error(field_name, reason, source, code, params):
    return ConfigError(field_name, reason, source, code, **params)


@dataclass
class TrainConfig:
    # Model
    model: str = "demo"  # hub id, local directory, or "demo" (the built-in demo model)
    trust_remote_code: bool = False
    # Data
    data: str = ""  # .jsonl / .json / .csv / .xlsx
    data_format: str = "auto"  # auto | alpaca | openai | sharegpt | chatglm | xtuner | competition | context
    column_map: dict[str, str] = field(default_factory=dict)  # field -> column name in the file, e.g. output: 回答
    val_split: float = 0.05  # a fraction below 1, or a number of rows from 1 up
    max_samples: int = 0  # 0 = all
    dedup: bool = True
    cutoff_len: int = 1024  # tokens per conversation; longer ones are truncated (counted and reported)
    packing: bool = True  # several conversations per row, no attention across them
    pack_len: int = 0  # tokens per packed row; 0 = cutoff_len
    # LoRA
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"  # all-linear | attention | q_proj,v_proj,...
    load_in_4bit: bool = False  # QLoRA: needs CUDA and bitsandbytes
    # Optimisation
    learning_rate: float = 2e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    num_epochs: float = 3.0
    max_steps: int = 0  # > 0 overrides num_epochs
    batch_size: int = 4
    grad_accum: int = 1
    precision: str = "auto"  # auto picks bf16 / fp16 / fp32 from the hardware
    gradient_checkpointing: bool = False
    processes: int = 1  # processes per machine: > 1 starts a data-parallel run (one per GPU; gloo on the CPU)
    seed: int = 42
    # Progress, evaluation, checkpoints
    logging_steps: int = 5
    eval_steps: int = 50  # 0 = evaluate only at the end
    save_steps: int = 50
    save_total_limit: int = 2
    sample_every: int = 50  # generate answers to sample_prompts every N steps; 0 = never
    sample_prompts: list[str] = field(default_factory=lambda: ["头痛发热应该怎么办？", "高血压患者饮食要注意什么？"])
    sample_max_new_tokens: int = 64
    # Task metrics during training (scored by jobs/train_eval.py, the layer above finetune/ and evaluation/)
    eval_sets: list = field(default_factory=list)  # paths, or {path, name?, task?: mc | qa}
    eval_every: int = 0  # score the sets every N steps (and at each epoch end); 0 = at each epoch end only
    eval_limit: int = 32  # at most this many items per set: a fixed, seeded subset, the same every time
    eval_max_new_tokens: int = 64  # the token cap of free-form answers scored during training
    select_by: str = ""  # accuracy:SET | rouge-l:SET | eval_loss; "" = the first set's main metric, else eval_loss
    early_stop: int = 0  # stop after this many evaluations without improvement; 0 = never
    eval_budget: float = 0.15  # skip an evaluation point while evaluating has taken more than this share; 0 = no cap
    # Output
    adapter_name: str = ""  # the adapter's name under <data_dir>/adapters/; "" = the job id
    output_dir: str = ""  # the final adapter directory; "" = <data_dir>/adapters/<adapter_name>

    # -------------------------------------------------------------------------------------------------------
    def validate(self, check_files: bool = True) -> "TrainConfig":
        _check_types(self)
        if not self.model.strip():
            raise ConfigError("model", "empty; give a hub id, a local directory or 'demo'", code="config_empty_model")
        if check_files and not self.data:
            raise ConfigError("data", "no data file given", code="config_no_data")
        if check_files and not Path(self.data).is_file():
            raise ConfigError("data", f"no such file: {self.data}", code="config_no_file", name=Path(self.data).name)
        from finetune.formats import FORMATS

        _one_of("data_format", self.data_format, ("auto",) + FORMATS)
        _one_of("lr_scheduler", self.lr_scheduler, SCHEDULERS)
        _one_of("precision", self.precision, PRECISIONS)
        _range("val_split", self.val_split, 0, None, "a fraction in [0, 1) or a row count >= 1")
        for name in ("cutoff_len", "lora_rank", "lora_alpha", "batch_size", "grad_accum", "logging_steps", "processes"):
            _range(name, getattr(self, name), 1, None, "a positive integer")
        for name in ("max_samples", "max_steps", "pack_len", "eval_steps", "save_steps", "sample_every"):
            _range(name, getattr(self, name), 0, None, "0 or a positive integer")
        _range("lora_dropout", self.lora_dropout, 0, 0.99, "between 0 and 0.99")
        _range("learning_rate", self.learning_rate, 1e-12, 1.0, "between 0 and 1 (typical LoRA: 1e-4 to 3e-4)")
        _range("warmup_ratio", self.warmup_ratio, 0, 0.99, "between 0 and 0.99")
        _range("save_total_limit", self.save_total_limit, 1, None, "at least 1 (resume needs a checkpoint)")
        if self.max_steps == 0 and self.num_epochs <= 0:
            raise ConfigError("num_epochs", "must be > 0 when max_steps is 0", code="config_epochs")
        if self.packing and self.pack_len and self.pack_len < self.cutoff_len:
            raise ConfigError("pack_len", f"must be 0 or at least cutoff_len ({self.cutoff_len})", code="config_pack_len",
                              cutoff=self.cutoff_len)
        if self.adapter_name and not NAME_RE.match(self.adapter_name):
            raise ConfigError("adapter_name", "use letters, digits, '.', '_' and '-' only (it becomes a directory name)",
                              code="config_name")
        if not re.match(r"^[\w.-]+(\s*,\s*[\w.-]+)*$", self.lora_targets.strip()):
            raise ConfigError("lora_targets", "all-linear, attention, or comma-separated module names like q_proj,v_proj",
                              code="config_lora_targets")
        _check_eval_settings(self, check_files)
        if self.load_in_4bit:
            check_qlora()
        if self.processes > 1:
            check_processes(self.processes)
        return self

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(dataclasses.asdict(self), allow_unicode=True, sort_keys=False)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml(), encoding="utf-8")

    @classmethod
    def from_dict(cls, values: dict, source: str = "") -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown setting (known: {', '.join(sorted(known))})", source,
                              code="config_unknown_setting")
        config = cls(**values)
        try:
            _check_types(config)
        except ConfigError as exc:
            raise ConfigError(exc.field, exc.reason, source, exc.code, **exc.params) from None
        return config

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        import yaml

        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError("(file)", f"cannot read: {exc}", str(path), code="config_unreadable") from None
        if not isinstance(values, dict):
            raise ConfigError("(file)", "expected a mapping of setting: value", str(path), code="config_not_mapping")
        return cls.from_dict(values, source=str(path))


SELECT_RE = re.compile(r"^(eval_loss|[a-z0-9-]+:[\w.-]+)$")


def eval_set_entries(eval_sets: list) -> list[dict]:
    """eval_sets as {path, name, task?}: a plain path is named after its file (mc_val.jsonl -> mc_val)."""
    entries = []
    for i, entry in enumerate(eval_sets):
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
            raise ConfigError(f"eval_sets[{i}]", "expected a file path, or a mapping with path (and name, task)",
                              code="config_eval_entry")
        unknown = sorted(set(entry) - {"path", "name", "task"})
        if unknown:
            raise ConfigError(f"eval_sets[{i}].{unknown[0]}", "unknown key (known: path, name, task)",
                              code="config_eval_key")
        name = entry.get("name") or Path(entry["path"]).stem
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ConfigError(f"eval_sets[{i}].name", f"{name!r}: letters, digits, '.', '_' and '-' only",
                              code="config_eval_name", name=repr(name))
        if entry.get("task") is not None and not isinstance(entry["task"], str):  # its name: jobs.train_eval
            raise ConfigError(f"eval_sets[{i}].task", f"{entry['task']!r}: expected a task name such as mc or qa",
                              code="config_eval_task", task=repr(entry["task"]))
        entries.append({**entry, "name": name})
    return entries


def _check_eval_settings(cfg: "TrainConfig", check_files: bool) -> None:
    """The shape of the evaluation settings; the sets' contents are read by jobs.train_eval before training."""
    entries = eval_set_entries(cfg.eval_sets)
    for i, entry in enumerate(entries):
        if check_files and not Path(entry["path"]).is_file():
            raise ConfigError(f"eval_sets[{i}].path", f"no such file: {entry['path']}", code="config_no_file",
                              name=Path(entry["path"]).name)
    _range("eval_every", cfg.eval_every, 0, None, "0 or a positive integer")
    _range("eval_limit", cfg.eval_limit, 1, None, "a positive integer")
    _range("eval_max_new_tokens", cfg.eval_max_new_tokens, 1, 4096, "between 1 and 4096")
    _range("early_stop", cfg.early_stop, 0, None, "0 or a positive integer")
    _range("eval_budget", cfg.eval_budget, 0, 1, "a share between 0 and 1 (0 = no cap)")
    if cfg.select_by and not SELECT_RE.match(cfg.select_by):
        raise ConfigError("select_by", f"{cfg.select_by!r}: expected accuracy:SET, rouge-l:SET or eval_loss",
                          code="config_select_by", value=repr(cfg.select_by))
    if cfg.select_by == "eval_loss" and cfg.val_split == 0:
        raise ConfigError("select_by", "eval_loss needs a validation split (val_split > 0)",
                          code="config_select_needs_split")
    if cfg.select_by.partition(":")[2] and not entries:
        raise ConfigError("select_by", f"{cfg.select_by!r} needs validation sets (eval_sets / --eval-data)",
                          code="config_select_needs_sets", value=repr(cfg.select_by))
    if entries and cfg.processes > 1:
        raise ConfigError("eval_sets", "task metrics during training run in a single process; "
                                       "set processes to 1 or drop eval_sets", code="config_eval_processes")


def select_metric(cfg: "TrainConfig", main_metrics: list[str]) -> str:
    """The metric that picks the adapter: --select-by, else the first set's headline metric, else eval_loss."""
    return cfg.select_by or (main_metrics[0] if main_metrics else "eval_loss")


def check_qlora() -> None:
    """QLoRA's 4-bit base needs bitsandbytes' CUDA kernels: say so plainly instead of failing deep in a load."""
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("load_in_4bit", "4-bit (QLoRA) needs a CUDA GPU and none is available; untick it to train "
                                          "plain LoRA on this machine", code="config_qlora_cuda")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("load_in_4bit", "4-bit (QLoRA) needs bitsandbytes: pip install bitsandbytes",
                          code="config_qlora_bnb")


def check_processes(n: int) -> None:
    """Data parallel: one process per GPU. Without a GPU the processes share the CPU (gloo), which checks the setup
    but is not faster."""
    import torch

    if torch.cuda.is_available() and n > torch.cuda.device_count():
        raise ConfigError("processes", f"{n} processes need {n} GPUs; this machine has {torch.cuda.device_count()}",
                          code="config_processes", n=n, gpus=torch.cuda.device_count())


def _check_types(config: TrainConfig) -> None:
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(config):
        value = getattr(config, f.name)
        expected = hints[f.name]
        origin = typing.get_origin(expected) or expected
        if origin is float and isinstance(value, int) and not isinstance(value, bool):
            setattr(config, f.name, float(value))  # YAML "3" for epochs is fine
            continue
        if origin in (types.UnionType, typing.Union):
            origin = tuple(typing.get_origin(a) or a for a in typing.get_args(expected))
        if not isinstance(value, origin) or (isinstance(value, bool) and expected is not bool):
            name = expected.__name__ if isinstance(expected, type) else str(expected)
            raise ConfigError(f.name, f"expected {name}, got {type(value).__name__} ({value!r})", code="config_type",
                              expected=name, type=type(value).__name__, value=repr(value)[:60])
    if not all(isinstance(p, str) for p in config.sample_prompts):
        raise ConfigError("sample_prompts", "expected a list of strings", code="config_prompts")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in config.column_map.items()):
        raise ConfigError("column_map", "expected a mapping of field name to column name", code="config_column_map")


def _one_of(name: str, value: str, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(name, f"{value!r} is not one of {', '.join(allowed)}", code="config_one_of",
                          value=repr(value), allowed=", ".join(allowed))


def _range(name: str, value, low, high, text: str) -> None:
    if value < low or (high is not None and value > high):
        raise ConfigError(name, f"must be {text}, got {value!r}", code="config_between" if high is not None
                          else "config_at_least", low=low, high=high, value=repr(value))


def resolved_precision(config: TrainConfig) -> str:
    """bf16 where the GPU has it (no loss scaling needed), else fp16 on CUDA, fp32 on the CPU."""
    import torch

    if config.precision != "auto":
        return config.precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"
