"""The model registry: one base model loaded once, LoRA adapters attached to it by name, shared by every user.

Models are named by strings: the base model by its reference (`registry.base_name`, e.g. "demo"), adapters by
their directory name under `<data_dir>/adapters/`, or by the name given when a local path or hub id is added.
The base answers with every adapter switched off. Several panes are answered in one batch: peft's
`adapter_names=[...]` routes each row of the batch through its own adapter (or none, "__base__"), which gives each
row exactly what that adapter alone gives (tests/test_chat_registry.py checks it token for token).

All work on the model (attaching adapters, generating) goes through one FIFO `GenerationQueue`.

Memory budget: with `memory_budget_bytes` set, attaching an adapter that would take the loaded models (the base plus
attached adapters) past the budget first detaches the least recently used adapters; never one the current request
uses (only the request holding the queue turn generates, so nothing else is in use). The base is never unloaded to
make room: when a request's models do not fit even beside the base alone, it gets a RegistryError that says what is
loaded and how to raise the budget. Every unload is recorded (`unloads`, and the request's `on_unload` callback),
so the UI can say what went and why. A detached adapter attaches again on its next use.
"""

from __future__ import annotations

import functools
import gc
import itertools
import json
import re
import threading
import time
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from chat.batched_lora import batched_lora
from chat.decode import greedy_decode, lean_decode_supported
from chat.queue import GenerationQueue
from chat.settings import GenerationSettings
from chat.streaming import UPDATE_INTERVAL_S, PaneStreamer, StopOnEvent, StreamState
from finetune.atomic import is_temp_name

PEFT_BASE = "__base__"  # peft's name for "no adapter" in a mixed-adapter batch
Messages = list[dict[str, str]]
Prompt = str | Messages  # a raw prompt (no template applied), or chat messages


class RegistryError(ValueError):
    """A model or adapter cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    kind: str  # "base" or "adapter"
    source: str  # model reference, adapter directory or hub id
    loaded: bool
    bytes: int  # in memory when loaded, else the weights' size on disk (0 if unknown)
    compatible: bool = True
    reason: str = ""  # why an adapter cannot be used with this base
    decoding: str = ""  # the base, once loaded: how greedy answers are decoded (fast step, or why the full forward)


@dataclass(frozen=True)
class Unload:
    """A model taken out of memory: which, how much it freed, and why."""

    name: str
    kind: str  # "base" or "adapter"
    bytes: int
    reason: str  # "lru" (made room under the memory budget) or "request" (someone asked for it)
    budget_bytes: int | None
    at: float  # time.time()


def human_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def _peft_safe(name: str) -> str:
    # Module dict keys cannot contain dots; adapter directory names often do ("qwen-0.5b-lora").
    return "a_" + re.sub(r"\W", "_", name)


def _disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("adapter_model.*")) if path.is_dir() else 0


def _stamp(path: Path) -> tuple:
    files = sorted(path.glob("adapter_model.*")) if path.is_dir() else []
    return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)


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


class ModelRegistry:
    def __init__(self, base: str = "demo", data_dir: Path | str | None = None, *, device: str | None = None,
                 dtype: str | None = None, load_in_4bit: bool = False, trust_remote_code: bool = False,
                 batched_lora: bool = True, lean_decode: bool = True, fast_step: bool = True,
                 memory_budget_bytes: int | None = None):
        self.base_name = base
        self.adapters_dir = Path(data_dir) / "adapters" if data_dir is not None else None
        self.device_request, self.dtype_request = device, dtype
        self.load_in_4bit, self.trust_remote_code = load_in_4bit, trust_remote_code
        self.use_batched_lora = batched_lora  # our two-bmm mixed batch (chat/batched_lora.py); False: peft's own
        self.use_lean_decode = lean_decode  # greedy answers by chat/decode.py's loop; False: always `generate`
        self.use_fast_step = fast_step  # in that loop, chat/fast_step.py's step where it applies; False: the forward
        self.update_interval_s = UPDATE_INTERVAL_S  # least time between two streamed updates (not the first, the end)
        self.queue = GenerationQueue()
        self._load_lock = threading.Lock()
        self._modules_lock = threading.Lock()  # attaching changes the module tree that memory accounting walks
        self._model = None  # the transformers model, wrapped in a PeftModel once an adapter is attached
        self._tokenizer = None
        self._extra: dict[str, str] = {}  # adapters added by path or hub id: name -> source
        self._attached: dict[str, str] = {}  # adapter name -> peft adapter name
        self._stamps: dict[str, tuple] = {}  # adapter name -> its weights file's (mtime, size) when attached
        self.memory_budget_bytes = memory_budget_bytes  # base + attached adapters; None: no cap
        self._base_size = 0  # bytes, measured once when the base loads
        self._sizes: dict[str, int] = {}  # attached adapter -> bytes in memory
        self._uses = itertools.count()
        self._last_used: dict[str, int] = {}  # adapter -> when a request last used it (a counter: no clock ties)
        self.unloads: deque[Unload] = deque(maxlen=50)  # most recent last

    # ---- discovery -------------------------------------------------------------------------------------------
    def add_adapter(self, source: str, name: str | None = None) -> str:
        """Make an adapter known by a local directory or hub id (not loaded yet); returns its name."""
        path = Path(source)
        if is_temp_name(path.name):  # an adapter still being written (or left by a killed job): not a model
            raise RegistryError(f"adapter {source!r}: no such adapter")
        if path.is_dir() and not (path / "adapter_config.json").exists():
            raise RegistryError(f"{path}: no adapter_config.json, so this is not a PEFT adapter directory")
        if not path.is_dir() and self.adapters_dir is not None and (self.adapters_dir / source).is_dir():
            return self._check_known(source)  # a fine-tune job's adapter, by its name
        if not path.is_dir() and (source.startswith((".", "/")) or source.count("/") != 1):
            raise RegistryError(f"adapter {source!r}: no such directory, and not a hub id (owner/name)")
        name = name or (path.name if path.is_dir() else source)
        if name == self.base_name:
            raise RegistryError(f"adapter name {name!r} is the base model's name; give it another name")
        self._extra[name] = str(path.resolve()) if path.is_dir() else source
        return name

    def _check_known(self, name: str) -> str:
        """`name` is an adapter known now and made for this base (reads that adapter's config only)."""
        source = self._scan().get(name)
        if source is None:
            raise RegistryError(f"unknown model {name!r}; known: {', '.join(m.name for m in self.models())}")
        ok, reason = self._compatibility(name, source)
        if not ok:
            raise RegistryError(f"adapter {name!r} cannot be used with base {self.base_name!r}: {reason}")
        return name

    def _compatibility(self, name: str, source: str) -> tuple[bool, str]:
        """(usable with this base, why not)."""
        try:
            base = self._adapter_base(source)
        except RegistryError as exc:
            return False, str(exc)
        if name == self.base_name:
            return False, "its name is the base model's name"
        return (True, "") if self._same_base(base) else (False, f"trained on {base!r}")

    def _scan(self) -> dict[str, str]:
        """Adapters on disk, re-read on every call so that newly trained ones appear without a restart."""
        found: dict[str, str] = {}
        if self.adapters_dir is not None and self.adapters_dir.is_dir():
            for config in sorted(self.adapters_dir.glob("*/adapter_config.json")):
                # atomic_dir's temp dirs hold an adapter_config.json before they are renamed, and keep it when the
                # writer was killed: listed, they would be drawn into blind battles and voted on.
                if not is_temp_name(config.parent.name):
                    found[config.parent.name] = str(config.parent)
        found.update(self._extra)
        return found

    def _adapter_base(self, source: str) -> str | None:
        config = Path(source) / "adapter_config.json"
        if not config.exists():
            return None  # a hub id: checked when it loads
        try:
            return json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path")
        except (OSError, json.JSONDecodeError) as exc:
            raise RegistryError(f"{config}: unreadable adapter config ({exc})") from exc

    def _same_base(self, ref: str | None) -> bool:
        if not ref or ref == self.base_name:
            return True
        from finetune.demo_model import DEMO_MODEL_NAME, cache_root

        def canonical(r: str) -> str:
            p = Path(r)
            if r == DEMO_MODEL_NAME or (p.parent.resolve() == cache_root().resolve() and p.name.startswith("demo-v")):
                return DEMO_MODEL_NAME
            return str(p.resolve()) if p.is_dir() else r

        return canonical(ref) == canonical(self.base_name)

    def models(self) -> list[ModelInfo]:
        """The base first, then every adapter known now, with memory (loaded) or disk size, and compatibility."""
        with self._modules_lock:
            base_bytes, loaded_bytes = self._base_size, dict(self._sizes)
        loaded = self._model is not None
        rows = [ModelInfo(self.base_name, "base", self.base_name, loaded, base_bytes,
                          decoding=self.decoding_path() if loaded else "")]
        for name, source in self._scan().items():
            ok, reason = self._compatibility(name, source)
            loaded = name in loaded_bytes
            size = loaded_bytes[name] if loaded else _disk_bytes(Path(source))
            rows.append(ModelInfo(name, "adapter", source, loaded, size, ok, reason))
        return rows

    def usable_models(self) -> list[str]:
        return [m.name for m in self.models() if m.compatible]

    # ---- loading ---------------------------------------------------------------------------------------------
    @property
    def tokenizer(self):
        self._ensure_base()
        return self._tokenizer

    @property
    def model(self):
        self._ensure_base()
        return self._model

    def _ensure_base(self) -> None:
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is None:
                tokenizer, model = self._load_base()
                with self._modules_lock:
                    self._tokenizer, self._model = tokenizer, model
                    self._base_size = self._base_bytes()

    def _load_base(self):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from finetune.demo_model import CHATML_TEMPLATE, resolve_model

        device, dtype = pick_device_dtype(self.device_request, self.dtype_request)
        path = resolve_model(self.base_name)
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
        if not tokenizer.chat_template:
            tokenizer.chat_template = CHATML_TEMPLATE
        return tokenizer, model

    def attach(self, name: str) -> list[Unload]:
        """Load a model into memory now (generation does it on first use anyway); returns what it unloaded."""
        unloaded: list[Unload] = []
        with self.queue.turn():
            self._attach_locked(name, {name}, unloaded.append)
        return unloaded

    def _attach_locked(self, name: str, keep: set[str] = frozenset(),
                       on_unload: Callable[[Unload], None] | None = None) -> None:
        """Attach, holding the queue turn: injecting LoRA layers while another request generates would corrupt it.

        `keep`: the adapters the current request uses, which making room under the budget must not detach."""
        self._ensure_base()
        if name == self.base_name:
            return
        self._check_known(name)
        source = self._scan()[name]
        stamp = _stamp(Path(source))
        self._last_used[name] = next(self._uses)
        if name in self._attached:
            if self._stamps.get(name) == stamp:
                return
            self._detach(name)  # retrained under the same name: reload it
        self._make_room(name, _disk_bytes(Path(source)), keep, on_unload)
        peft_name = _peft_safe(name)
        from peft import PeftModel

        try:
            with self._modules_lock:
                if isinstance(self._model, PeftModel):
                    self._model.load_adapter(source, adapter_name=peft_name)
                else:
                    self._model = PeftModel.from_pretrained(self._model, source, adapter_name=peft_name)
        except (OSError, ValueError, RuntimeError) as exc:
            # An added path or hub id that does not load (a typo, no network) would otherwise stay in every user's
            # model list until a restart: forget it. Adapters found on disk are listed by the scan anyway.
            self._extra.pop(name, None)
            raise RegistryError(f"adapter {name!r} from {source} cannot be attached: {exc}") from exc
        self._model.eval()
        with self._modules_lock:
            self._attached[name], self._stamps[name] = peft_name, stamp
            self._sizes[name] = self._adapter_bytes(name)
        try:  # the size on disk was an estimate (an fp16 file can take twice that in memory; a hub id is unknown)
            self._make_room(name, 0, keep | {name}, on_unload)
        except RegistryError:
            self._detach(name)
            raise

    def _make_room(self, incoming: str, extra: int, keep: set[str], on_unload) -> None:
        """Detach least-recently-used adapters, none in `keep`, until the loaded models plus `extra` fit the budget."""
        budget = self.memory_budget_bytes
        if budget is None:
            return
        while self._loaded_bytes() + extra > budget:
            idle = [n for n in self._attached if n not in keep]
            if not idle:
                raise RegistryError(self._over_budget(incoming, extra))
            self._detach(min(idle, key=lambda n: self._last_used.get(n, -1)), "lru", on_unload)

    def _loaded_bytes(self) -> int:
        with self._modules_lock:
            return self._base_size + sum(self._sizes.values())

    def _over_budget(self, incoming: str, extra: int) -> str:
        with self._modules_lock:
            loaded = [f"{self.base_name} (base, {human_bytes(self._base_size)})"]
            loaded += [f"{n} (adapter, {human_bytes(b)}, in use by this request)" for n, b in self._sizes.items()]
        need = f" ({human_bytes(extra)})" if extra else ""
        return (f"adapter {incoming!r}{need} does not fit in the memory budget of "
                f"{human_bytes(self.memory_budget_bytes)}: loaded are {', '.join(loaded)}, and no other adapter "
                f"is left to unload. Ask the admin to raise the budget (python app.py --memory-budget-gb N), or pick "
                f"fewer adapters at once.")

    def _detach(self, name: str, reason: str | None = None, on_unload=None) -> None:
        """Take an adapter out of the model (holding the queue turn); recorded when a `reason` is given."""
        with self._modules_lock:
            peft_name = self._attached.pop(name)
            size = self._sizes.pop(name, 0)
            self._stamps.pop(name, None)
            if self._attached:
                self._model.set_adapter(next(iter(self._attached.values())))  # peft warns when the active one goes
                self._model.delete_adapter(peft_name)
            else:  # the last one: back to the plain model, with peft's LoRA layers gone (as fast as before any)
                self._model = self._model.unload()
        self._free_memory()
        if reason is not None:
            self._record(Unload(name, "adapter", size, reason, self.memory_budget_bytes, time.time()), on_unload)

    def _record(self, event: Unload, on_unload) -> None:
        self.unloads.append(event)
        if on_unload is not None:
            on_unload(event)

    @staticmethod
    def _free_memory() -> None:
        gc.collect()
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()  # else the freed blocks stay reserved here and nvidia-smi shows no change

    def unload(self, name: str) -> list[Unload]:
        """Take a model out of memory on request: an adapter, or the base (with every adapter). Loads again on use."""
        events: list[Unload] = []
        with self.queue.turn():
            if name in self._attached:
                self._detach(name, "request", events.append)
            elif name == self.base_name and self._model is not None:
                for adapter in list(self._attached):
                    self._detach(adapter, "request", events.append)
                with self._modules_lock:
                    size, self._model, self._base_size = self._base_size, None, 0
                self._free_memory()
                self._record(Unload(name, "base", size, "request", self.memory_budget_bytes, time.time()),
                             events.append)
            else:
                raise RegistryError(f"{name!r} is not loaded; loaded: {', '.join(self.loaded()) or 'nothing'}")
        return events

    def loaded(self) -> list[str]:
        """Names of the models in memory: the base (when loaded), then adapters, most recently used first."""
        with self._modules_lock:
            adapters = sorted(self._attached, key=lambda n: -self._last_used.get(n, -1))
            return ([self.base_name] if self._model is not None else []) + adapters

    def set_memory_budget(self, budget_bytes: int | None) -> None:
        """Takes effect at the next attach (nothing is unloaded now: a request may be generating)."""
        if budget_bytes is not None and budget_bytes <= 0:
            raise RegistryError(f"the memory budget must be positive, got {budget_bytes} bytes")
        self.memory_budget_bytes = budget_bytes

    # ---- memory ----------------------------------------------------------------------------------------------
    def _base_bytes(self) -> int:
        if self._model is None:
            return 0
        return sum(p.numel() * p.element_size() for n, p in self._model.named_parameters() if ".lora_" not in n)

    def _adapter_bytes(self, name: str) -> int:
        marker = f".{self._attached[name]}."
        return sum(p.numel() * p.element_size() for n, p in self._model.named_parameters() if marker in n + ".")

    # ---- generation ------------------------------------------------------------------------------------------
    def render(self, prompt: Prompt) -> str:
        """Chat messages -> the model's prompt text (template applied); raw strings pass through unchanged."""
        if isinstance(prompt, str):
            return prompt
        return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)

    def stream(self, panes: Sequence[tuple[str | None, Prompt]], settings: GenerationSettings = GenerationSettings(),
               stop: threading.Event | None = None,
               on_unload: Callable[[Unload], None] | None = None) -> Iterator[StreamState]:
        """Answer several (model, prompt) panes in one batch, yielding every pane's text so far after each step.

        `model` is an adapter name, or None / `base_name` for the base. Leaving the loop early (or setting `stop`)
        stops the generation and frees the queue. `on_unload` hears of every adapter detached to make room for this
        request (called from the generating thread).
        """
        if not panes:
            raise RegistryError("no model selected")
        names = [self.base_name if m is None else m for m, _ in panes]
        for name in names:
            if name != self.base_name:
                self._check_known(name)
        batch = self._encode([self.render(p) for _, p in panes], settings)
        stop = stop or threading.Event()
        streamer = PaneStreamer(self.tokenizer, len(panes), self._eos_ids(), batch["input_ids"].shape[1],
                                self.update_interval_s)
        ticket = self.queue.enter()
        worker = threading.Thread(target=self._generate_worker, name="chat-generate", daemon=True,
                                  args=(ticket, names, batch, settings, streamer, stop, on_unload))
        worker.start()
        try:
            for state in streamer.states(lambda: self.queue.ahead(ticket)):
                state.stopped = stop.is_set()
                yield state
        finally:
            stop.set()
            worker.join()
            self.queue.leave(ticket)

    def _generate_worker(self, ticket, names, batch, settings, streamer, stop, on_unload) -> None:
        import torch

        try:
            while not self.queue.wait(ticket, timeout=0.1):
                if stop.is_set():
                    return
            for name in dict.fromkeys(names):
                self._attach_locked(name, set(names), on_unload)
            kwargs = settings.generate_kwargs()
            if not settings.greedy:
                torch.manual_seed(settings.seed)  # under the queue turn, so no other request touches the RNG
            device = self._model.device
            kwargs.update(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                          streamer=streamer, stopping_criteria=[StopOnEvent(stop)],
                          pad_token_id=self._tokenizer.pad_token_id)
            decode = functools.partial(self._decode, settings, stop)
            if not self._attached:  # no adapter ever attached: the plain model
                decode(kwargs)
                return
            rows = [self._attached.get(n) for n in names]  # None: the base, adapters off
            fast = batched_lora(self._model, rows) if self.use_batched_lora else nullcontext(False)
            with fast as batched:
                if batched:
                    decode(kwargs)
                elif len(set(rows)) == 1:  # one model for the whole batch: peft's ordinary path
                    self._generate_one_model(rows[0], kwargs, decode)
                else:  # peft's own mixed batch: each row through its adapter, "__base__" = adapters off
                    self._model.generate(adapter_names=[r or PEFT_BASE for r in rows], **kwargs)
        except Exception as exc:  # handed to the consuming thread, which re-raises it
            if isinstance(exc, ValueError) and not isinstance(exc, RegistryError):  # peft/transformers refusals
                exc = RegistryError(f"{', '.join(sorted(set(names)))}: {exc}")
            streamer.fail(exc)
        finally:
            self.queue.leave(ticket)
            streamer.end()

    def _generate_one_model(self, peft_name: str | None, kwargs: dict, decode: Callable[[dict], None]) -> None:
        if peft_name is None:
            with self._model.disable_adapter():
                decode(kwargs)
        else:
            self._model.set_adapter(peft_name)
            decode(kwargs)

    def _decode(self, settings: GenerationSettings, stop: threading.Event, kwargs: dict) -> None:
        """`generate`, or chat/decode.py's lean greedy loop where it gives the same answers (greedy, nothing else
        asked by the model's generation config)."""
        if self.use_lean_decode and lean_decode_supported(self._model.generation_config, settings):
            greedy_decode(self._model, kwargs["input_ids"], kwargs["attention_mask"], settings, self._eos_ids(),
                          kwargs["pad_token_id"], kwargs["streamer"], stop, fast_step=self.use_fast_step)
        else:
            self._model.generate(**kwargs)

    def decoding_path(self) -> str:
        """How greedy chat answers are decoded on this base, for the model list: chat/fast_step.py's step, or the
        model's full forward and why (both give the adapters' exact answers; the fast step is faster)."""
        from chat.fast_step import FastStep

        if not self.use_lean_decode:
            return "generate (the lean decoding loop is switched off)"
        if not self.use_fast_step:
            return "full forward per step (the fast step is switched off)"
        reason = FastStep.unsupported_reason(self.model)
        return "fast step (chat/fast_step.py)" if reason is None else f"full forward per step: {reason}"

    def _encode(self, texts: list[str], settings: GenerationSettings):
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        longest = int(batch["attention_mask"].sum(dim=1).max())
        if limit and longest + settings.max_new_tokens > limit:
            raise RegistryError(
                f"the conversation is {longest} tokens; with max_new_tokens={settings.max_new_tokens} it exceeds the "
                f"model's context of {limit} tokens: clear the chat or lower max_new_tokens"
            )
        return batch

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self._tokenizer.eos_token_id is not None:
            ids.add(self._tokenizer.eos_token_id)
        return ids

    def generate_panes(self, panes: Sequence[tuple[str | None, Prompt]],
                       settings: GenerationSettings = GenerationSettings()) -> list[str]:
        """Like `stream`, returning only the final answers."""
        state = None
        for state in self.stream(panes, settings):
            pass
        return list(state.texts) if state else []

    def generate(self, prompts: Sequence[Prompt], adapter: str | None = None,
                 settings: GenerationSettings = GenerationSettings(), batch_size: int = 8) -> list[str]:
        """Answer many prompts with one model (the base when `adapter` is None), `batch_size` at a time."""
        if batch_size < 1:
            raise RegistryError(f"batch_size must be at least 1, got {batch_size}")
        answers: list[str] = []
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start:start + batch_size]
            answers += self.generate_panes([(adapter, p) for p in chunk], settings)
        return answers

    def next_token_logits(self, prompts: Sequence[Prompt], adapter: str | None = None):
        """Scores of the token after each prompt, from one batched forward pass (Evaluate's likelihood method).

        Returns a float32 CPU tensor [len(prompts), vocab]. The base (adapter None) runs with every adapter off.
        Rows are left-padded, with positions counted from each row's first real token as `generate` does, so a
        row scores the same whatever else is in its batch.
        """
        import torch
        from peft import PeftModel

        name = adapter or self.base_name
        if name != self.base_name:
            self._check_known(name)
        texts = [self.render(p) for p in prompts]
        with self.queue.turn():
            self._attach_locked(name, {name})
            batch = self._encode(texts, GenerationSettings(max_new_tokens=1))
            mask = batch["attention_mask"]
            device = self._model.device
            kwargs = dict(input_ids=batch["input_ids"].to(device), attention_mask=mask.to(device),
                          position_ids=(mask.cumsum(-1) - 1).clamp(min=0).to(device), logits_to_keep=1)
            peft_name = self._attached.get(name)
            if peft_name is not None:
                self._model.set_adapter(peft_name)
            off = self._model.disable_adapter() if peft_name is None and isinstance(self._model, PeftModel) \
                else nullcontext()
            with torch.inference_mode(), off:
                logits = self._model(**kwargs).logits[:, -1, :]
            return logits.float().cpu()


_SHARED: dict[tuple, ModelRegistry] = {}
_SHARED_LOCK = threading.Lock()


_KEEP = object()


def shared_registry(base: str, data_dir: Path | str | None = None, *, memory_budget_bytes=_KEEP,
                    **options) -> ModelRegistry:
    """The one registry per (base, data_dir) in this process: every user and every tab shares its loaded model.

    The memory budget is not part of the key (a tab that does not name one gets the same registry); given, it is set.
    """
    key = (base, str(data_dir), tuple(sorted(options.items())))
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = ModelRegistry(base, data_dir, **options)
        if memory_budget_bytes is not _KEEP:
            _SHARED[key].set_memory_budget(memory_budget_bytes)
        return _SHARED[key]
