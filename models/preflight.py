"""Checks a model before loading it, from its config and tokenizer files only (kilobytes, never the weights).

Loading a model that cannot work fails late and badly: an unknown architecture or remote code without permission
ends in a transformers traceback, a model too large for the memory left is killed by the kernel (taking the app with
it) or fills the GPU for every other user. So every place that loads a base (the in-process host, training start,
evaluation through the host) calls `preflight` first; each problem is one `PreflightError` with a `code` and
`params` the UI renders in the page's language, and an English message naming the model and what to do.

A tokenizer without a chat template is not an error: the project gives such base models its ChatML template
(models/templates.py), which is right for fine-tuning a base model; `template_notice` says so, naming the model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from models.catalog import OVERHEAD, ModelShape, parameters, weight_bytes
from models.units import human_bytes
from models.local.catalog import RegistryError

FREE_BYTES_ENV = "MEDTUNE_FREE_MEMORY_BYTES"  # overrides the measured free memory (tests; a limit the OS cannot see)
DTYPE_BYTES = {"float32": 4, "fp32": 4, "float16": 2, "fp16": 2, "bfloat16": 2, "bf16": 2, "float64": 8}

MESSAGES = {  # English; ui/strings.py holds the same keys ("preflight.<code>") in English and Chinese
    "unknown_architecture": "model {model}: architecture {model_type!r} is unknown to this transformers "
                            "({transformers}); upgrade transformers (pip install -U transformers), or choose a model "
                            "of a supported family (Qwen2.5/Qwen3, Llama, GLM-4, InternLM3, ...)",
    "remote_code": "model {model}: its config.json loads its own Python code (auto_map: {classes}); this runs code "
                   "from the model's authors on this machine. Only if you trust them, run the command again with "
                   "--trust-remote-code (the app never runs a model's own code)",
    "too_large": "model {model}: about {params} parameters need about {needed} in {dtype} on {device} (weights "
                 "{weights} + {overhead}% overhead), but only {free} is free; choose a smaller model, free memory, "
                 "or train it in 4-bit on a GPU (--load-in-4bit)",
    "no_chat_template": "model {model}: its tokenizer has no chat template; the project's ChatML template is used "
                        "(right for fine-tuning a base model; for a chat model, use the variant that ships its "
                        "template)",
    "no_config": "model {model}: no config.json readable ({reason}); give a model directory or hub id that has one",
}


class PreflightError(RegistryError):
    """A model that must not be loaded: `code` (a key of MESSAGES), `params` (the figures), English text."""

    def __init__(self, code: str, **params):
        self.code, self.params = code, {k: str(v) for k, v in params.items()}
        super().__init__(MESSAGES[code].format(**self.params))


def _read_json(path: str, name: str) -> dict | None:
    """`name` from a local model directory, or from the Hugging Face cache / hub (None when it does not exist)."""
    from transformers.utils import cached_file

    if Path(path).is_dir():
        file = Path(path) / name
        return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None
    found = cached_file(path, name, _raise_exceptions_for_missing_entries=False,
                        _raise_exceptions_for_connection_errors=False)
    return json.loads(Path(found).read_text(encoding="utf-8")) if found else None


def free_memory(device: str) -> int | None:
    """Bytes free for a model now: the GPU's free memory on CUDA, else RAM available to this process (the smaller
    of the machine's available memory and what a cgroup limit, as in a container, leaves). None when unknown."""
    if os.environ.get(FREE_BYTES_ENV, "").strip():
        return int(os.environ[FREE_BYTES_ENV])
    if device.startswith("cuda"):
        import torch

        return torch.cuda.mem_get_info(torch.device(device))[0]
    import psutil

    free = psutil.virtual_memory().available
    try:  # cgroup v2: psutil reports the host's memory, not the container's limit
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            free = min(free, int(limit) - used)
    except (OSError, ValueError):
        pass
    return free


def _dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def preflight(ref: str, path: str, *, trust_remote_code: bool, dtype, device: str, load_in_4bit: bool = False,
              free_bytes: int | None = None) -> None:
    """Raises PreflightError when the model `ref` (resolved to `path`) cannot be loaded here; returns otherwise.

    Nothing is decided when a file cannot be fetched (offline, unknown id): the loader then reports that itself."""
    import transformers
    from transformers import CONFIG_MAPPING

    try:
        config = _read_json(path, "config.json")
    except (OSError, ValueError) as exc:
        raise PreflightError("no_config", model=ref, reason=str(exc)[:200]) from None
    if config is None:
        return
    auto_map = config.get("auto_map") or {}
    model_type = config.get("model_type", "")
    # Many repos of natively supported families (InternLM3, GLM-4, ...) still ship auto_map: without trust,
    # transformers then uses its own class, so only an architecture it does not know needs the model's code.
    native = model_type in CONFIG_MAPPING
    if auto_map and not native and not trust_remote_code:
        raise PreflightError("remote_code", model=ref, classes=", ".join(sorted(auto_map)))
    if not native and not (auto_map and trust_remote_code):
        raise PreflightError("unknown_architecture", model=ref, model_type=model_type,
                             transformers=transformers.__version__)
    _check_size(ref, config, _dtype_name(dtype), device, load_in_4bit, free_bytes)


def _check_size(ref: str, config: dict, dtype: str, device: str, load_in_4bit: bool, free_bytes: int | None) -> None:
    # One parameter formula (models/catalog.py); a config that is not Llama-like (no hidden_size, ...) is not sized.
    config = {**config, **(config.get("text_config") or {})}  # multimodal configs (Gemma 3) nest the text model
    try:
        shape = ModelShape.from_config(config)
    except (KeyError, TypeError, ZeroDivisionError):
        return
    total = parameters(shape)["total"]
    if dtype == "auto":  # from_pretrained's "auto": the dtype the config says the weights were saved in
        dtype = str(config.get("dtype") or config.get("torch_dtype") or "float32")
    weights = weight_bytes(shape, "4bit") if load_in_4bit else total * DTYPE_BYTES.get(dtype, 4)
    needed = int(weights * (1 + OVERHEAD))
    free = free_memory(device) if free_bytes is None else free_bytes
    if free is not None and needed > free:
        raise PreflightError("too_large", model=ref, params=f"{total / 1e9:.2f}B" if total >= 1e8 else f"{total:,}",
                             needed=human_bytes(needed), weights=human_bytes(weights), overhead=int(OVERHEAD * 100),
                             free=human_bytes(free), dtype="4-bit" if load_in_4bit else dtype, device=device)


def template_notice(ref: str, path: str) -> str | None:
    """An English line when the model ships no chat template (tokenizer_config.json or chat_template.jinja), so the
    project's ChatML is used: right for a base model being fine-tuned, wrong for a chat model trained on another
    format. None when it has its own (or the files cannot be read)."""
    try:
        tokenizer_config = _read_json(path, "tokenizer_config.json")
        jinja = (Path(path) / "chat_template.jinja").is_file() if Path(path).is_dir() else False
    except (OSError, ValueError):
        return None
    if tokenizer_config is None or tokenizer_config.get("chat_template") or jinja:
        return None
    return MESSAGES["no_chat_template"].format(model=ref)
