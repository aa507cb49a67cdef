"""The model host: the one base model in memory, LoRA adapters attached to it and detached, within a memory budget.

Memory budget: with `memory_budget_bytes` set, attaching an adapter that would take the loaded models (the base plus
attached adapters) past the budget first detaches the least recently used adapters; never one the current request
uses (only the request holding the queue turn generates, so nothing else is in use). The base is never unloaded to
make room: when a request's models do not fit even beside the base alone, it gets a RegistryError that says what is
loaded and how to raise the budget. Every unload is recorded (`unloads`, and the request's `on_unload` callback),
so the UI can say what went and why. A detached adapter attaches again on its next use.

Everything that changes the model (attach, detach, unload) runs holding the generation queue's turn; the caller
takes it (`ModelRegistry`), the host only checks nothing else does.
"""

from __future__ import annotations

import gc
import itertools
import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from models.local.catalog import AdapterCatalog, RegistryError, disk_bytes, weights_stamp
from models.preflight import preflight, template_notice
from models.refs import resolve_model
from models.templates import ensure_chat_template
from models.units import human_bytes

log = logging.getLogger("medtune.models")


@dataclass(frozen=True)
class Unload:
    """A model taken out of memory: which, how much it freed, and why."""

    name: str
    kind: str  # "base" or "adapter"
    bytes: int
    reason: str  # "lru" (made room under the memory budget) or "request" (someone asked for it)
    budget_bytes: int | None
    at: float  # time.time()


def _peft_safe(name: str) -> str:
    # Module dict keys cannot contain dots; adapter directory names often do ("qwen-0.5b-lora").
    return "a_" + re.sub(r"\W", "_", name)


def pick_device_dtype(device: str | None = None, dtype: str | None = None):
    """Hardware decides unless told: CUDA bf16 (fp16 without bf16 support), Apple MPS fp16, CPU fp32."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if dtype is None:
        if device.startswith("cuda"):
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            dtype = "float16" if device == "mps" else "float32"
    return device, getattr(torch, dtype)


class ModelHost:
    def __init__(self, base_name: str, catalog: AdapterCatalog, *, device: str | None = None,
                 dtype: str | None = None, load_in_4bit: bool = False, trust_remote_code: bool = False,
                 memory_budget_bytes: int | None = None, hub: str | None = None):
        self.base_name, self.catalog, self.hub = base_name, catalog, hub
        self.device_request, self.dtype_request = device, dtype
        self.load_in_4bit, self.trust_remote_code = load_in_4bit, trust_remote_code
        self._load_lock = threading.Lock()
        self.modules_lock = threading.Lock()  # attaching changes the module tree that memory accounting walks
        self.model = None  # the transformers model, wrapped in a PeftModel once an adapter is attached
        self.tokenizer = None
        self.template_notice: str | None = None  # set when the base ships no chat template (ChatML is used)
        self.attached: dict[str, str] = {}  # adapter name -> peft adapter name
        self._stamps: dict[str, tuple] = {}  # adapter name -> its weights file's (mtime, size) when attached
        self.memory_budget_bytes = memory_budget_bytes  # base + attached adapters; None: no cap
        self.base_size = 0  # bytes, measured once when the base loads
        self.sizes: dict[str, int] = {}  # attached adapter -> bytes in memory
        self._uses = itertools.count()
        self._last_used: dict[str, int] = {}  # adapter -> when a request last used it (a counter: no clock ties)
        self.unloads: deque[Unload] = deque(maxlen=50)  # most recent last

    # ---- the base ------------------------------------------------------------------------------------------
    def ensure_base(self) -> None:
        if self.model is not None:
            return
        with self._load_lock:
            if self.model is None:
                tokenizer, model = self._load_base()
                with self.modules_lock:
                    self.tokenizer, self.model = tokenizer, model
                    self.base_size = self._base_bytes()

    def _load_base(self):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device, dtype = pick_device_dtype(self.device_request, self.dtype_request)
        try:
            path = resolve_model(self.base_name, self.hub)
        except ValueError as exc:  # an unknown hub, ModelScope missing or unreachable
            raise RegistryError(f"base model {self.base_name!r} cannot be loaded: {exc}") from exc
        # Before any weight is read: an unknown architecture, remote code without permission or a model larger than
        # the memory left gets a PreflightError naming it (a RegistryError: the app shows it and stays up).
        preflight(self.base_name, path, trust_remote_code=self.trust_remote_code, dtype=dtype, device=device,
                  load_in_4bit=self.load_in_4bit)
        self.template_notice = template_notice(self.base_name, path)
        if self.template_notice:
            log.warning(self.template_notice)
        kwargs: dict = dict(dtype=dtype, trust_remote_code=self.trust_remote_code)
        if self.load_in_4bit:
            if not device.startswith("cuda"):
                raise RegistryError("load_in_4bit needs a CUDA GPU (bitsandbytes); this machine has none")
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=dtype)
            kwargs["device_map"] = {"": device}
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=self.trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        except OSError as exc:
            raise RegistryError(f"base model {self.base_name!r} cannot be loaded: {exc}") from exc
        if not self.load_in_4bit:
            model.to(device)
        model.eval()  # peft refuses mixed-adapter batches in training mode; dropout must be off anyway
        tokenizer.padding_side = "left"  # decoder-only batches pad on the left so every row ends at its last token
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        ensure_chat_template(tokenizer)
        return tokenizer, model

    # ---- adapters ------------------------------------------------------------------------------------------
    def attach(self, name: str, keep: set[str] = frozenset(),
               on_unload: Callable[[Unload], None] | None = None) -> None:
        """Attach, holding the queue turn: injecting LoRA layers while another request generates would corrupt it.

        `keep`: the adapters the current request uses, which making room under the budget must not detach."""
        self.ensure_base()
        if name == self.base_name:
            return
        self.catalog.check(name)
        source = self.catalog.source(name)
        stamp = weights_stamp(Path(source))
        self._last_used[name] = next(self._uses)
        if name in self.attached:
            if self._stamps.get(name) == stamp:
                return
            self.detach(name)  # retrained under the same name: reload it
        self._make_room(name, disk_bytes(Path(source)), keep, on_unload)
        peft_name = _peft_safe(name)
        from peft import PeftModel

        try:
            with self.modules_lock:
                if isinstance(self.model, PeftModel):
                    self.model.load_adapter(source, adapter_name=peft_name)
                else:
                    self.model = PeftModel.from_pretrained(self.model, source, adapter_name=peft_name)
        except (OSError, ValueError, RuntimeError) as exc:
            self.catalog.forget(name)
            raise RegistryError(f"adapter {name!r} from {source} cannot be attached: {exc}") from exc
        self.model.eval()
        with self.modules_lock:
            self.attached[name], self._stamps[name] = peft_name, stamp
            self.sizes[name] = self._adapter_bytes(name)
        try:  # the size on disk was an estimate (an fp16 file can take twice that in memory; a hub id is unknown)
            self._make_room(name, 0, keep | {name}, on_unload)
        except RegistryError:
            self.detach(name)
            raise

    def _make_room(self, incoming: str, extra: int, keep: set[str], on_unload) -> None:
        """Detach least-recently-used adapters, none in `keep`, until the loaded models plus `extra` fit the budget."""
        budget = self.memory_budget_bytes
        if budget is None:
            return
        while self.loaded_bytes() + extra > budget:
            idle = [n for n in self.attached if n not in keep]
            if not idle:
                raise RegistryError(self._over_budget(incoming, extra))
            self.detach(min(idle, key=lambda n: self._last_used.get(n, -1)), "lru", on_unload)

    def loaded_bytes(self) -> int:
        with self.modules_lock:
            return self.base_size + sum(self.sizes.values())

    def _over_budget(self, incoming: str, extra: int) -> str:
        with self.modules_lock:
            loaded = [f"{self.base_name} (base, {human_bytes(self.base_size)})"]
            loaded += [f"{n} (adapter, {human_bytes(b)}, in use by this request)" for n, b in self.sizes.items()]
        need = f" ({human_bytes(extra)})" if extra else ""
        return (f"adapter {incoming!r}{need} does not fit in the memory budget of "
                f"{human_bytes(self.memory_budget_bytes)}: loaded are {', '.join(loaded)}, and no other adapter "
                f"is left to unload. Ask the admin to raise the budget (python app.py --memory-budget-gb N), or pick "
                f"fewer adapters at once.")

    def detach(self, name: str, reason: str | None = None, on_unload=None) -> None:
        """Take an adapter out of the model (holding the queue turn); recorded when a `reason` is given."""
        with self.modules_lock:
            peft_name = self.attached.pop(name)
            size = self.sizes.pop(name, 0)
            self._stamps.pop(name, None)
            if self.attached:
                self.model.set_adapter(next(iter(self.attached.values())))  # peft warns when the active one goes
                self.model.delete_adapter(peft_name)
            else:  # the last one: back to the plain model, with peft's LoRA layers gone (as fast as before any)
                self.model = self.model.unload()
        _free_memory()
        if reason is not None:
            self.record(Unload(name, "adapter", size, reason, self.memory_budget_bytes, time.time()), on_unload)

    def unload_base(self, on_unload) -> None:
        """The base and every adapter out of memory (holding the queue turn); it loads again on next use."""
        for adapter in list(self.attached):
            self.detach(adapter, "request", on_unload)
        with self.modules_lock:
            size, self.model, self.base_size = self.base_size, None, 0
        _free_memory()
        self.record(Unload(self.base_name, "base", size, "request", self.memory_budget_bytes, time.time()), on_unload)

    def record(self, event: Unload, on_unload) -> None:
        self.unloads.append(event)
        if on_unload is not None:
            on_unload(event)

    def loaded(self) -> list[str]:
        """Names of the models in memory: the base (when loaded), then adapters, most recently used first."""
        with self.modules_lock:
            adapters = sorted(self.attached, key=lambda n: -self._last_used.get(n, -1))
            return ([self.base_name] if self.model is not None else []) + adapters

    # ---- memory --------------------------------------------------------------------------------------------
    def _base_bytes(self) -> int:
        if self.model is None:
            return 0
        return sum(p.numel() * p.element_size() for n, p in self.model.named_parameters() if ".lora_" not in n)

    def _adapter_bytes(self, name: str) -> int:
        marker = f".{self.attached[name]}."
        return sum(p.numel() * p.element_size() for n, p in self.model.named_parameters() if marker in n + ".")


def _free_memory() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()  # else the freed blocks stay reserved here and nvidia-smi shows no change
