"""The in-process models: one base model loaded once, LoRA adapters attached to it by name, shared by every user.

Models are named by strings: the base model by its reference (`registry.base_name`, e.g. "demo"), adapters by
their directory name under `<data_dir>/adapters/`, or by the name given when a local path or hub id is added.
The base answers with every adapter switched off.

`ModelRegistry` puts three parts together and is what the app holds:
- `AdapterCatalog` (catalog.py): which adapters exist and fit this base (disk only);
- `ModelHost` (host.py): the loaded base, attaching and detaching adapters, the memory budget;
- `Generator` (generator.py): batched, streamed answers and next-token scores from what the host holds.
All work on the model (attaching adapters, generating) goes through one FIFO `GenerationQueue`. `model_for(name)`
gives the `ChatModel` (models/interface.py) that Chat and Evaluate use for one of these models.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Iterator, Sequence

from models.local.catalog import AdapterCatalog, ModelInfo, RegistryError  # noqa: F401 (re-exported)
from models.interface import adapter_of
from models.local.generator import Generator, Prompt
from models.local.host import ModelHost, Unload, human_bytes, pick_device_dtype  # noqa: F401 (re-exported)
from models.local.queue import GenerationQueue
from models.local.streaming import StreamState
from models.settings import GenerationSettings


class ModelRegistry:
    def __init__(self, base: str = "demo", data_dir: Path | str | None = None, *, device: str | None = None,
                 dtype: str | None = None, load_in_4bit: bool = False, trust_remote_code: bool = False,
                 batched_lora: bool = True, lean_decode: bool = True, fast_step: bool = True,
                 memory_budget_bytes: int | None = None, hub: str | None = None):
        self.base_name = base
        self.adapters_dir = Path(data_dir) / "adapters" if data_dir is not None else None
        self.queue = GenerationQueue()
        self.catalog = AdapterCatalog(base, self.adapters_dir)
        self.host = ModelHost(base, self.catalog, device=device, dtype=dtype, load_in_4bit=load_in_4bit,
                              trust_remote_code=trust_remote_code, memory_budget_bytes=memory_budget_bytes, hub=hub)
        self.generator = Generator(self.host, self.queue, batched_lora=batched_lora, lean_decode=lean_decode,
                                   fast_step=fast_step)

    # ---- what the parts own, as attributes (the UI, tests and benchmarks read and set them) --------------------
    @property
    def tokenizer(self):
        self.host.ensure_base()  # loads the base on first use
        return self.host.tokenizer

    @property
    def model(self):
        self.host.ensure_base()
        return self.host.model

    unloads = property(lambda self: self.host.unloads)
    memory_budget_bytes = property(lambda self: self.host.memory_budget_bytes)
    update_interval_s = property(lambda self: self.generator.update_interval_s,
                                 lambda self, v: setattr(self.generator, "update_interval_s", v))
    use_batched_lora = property(lambda self: self.generator.use_batched_lora,
                                lambda self, v: setattr(self.generator, "use_batched_lora", v))
    use_lean_decode = property(lambda self: self.generator.use_lean_decode,
                               lambda self, v: setattr(self.generator, "use_lean_decode", v))
    use_fast_step = property(lambda self: self.generator.use_fast_step,
                             lambda self, v: setattr(self.generator, "use_fast_step", v))

    # ---- the catalog ---------------------------------------------------------------------------------------
    def add_adapter(self, source: str, name: str | None = None) -> str:
        """Make an adapter known by a local directory or hub id (not loaded yet); returns its name."""
        return self.catalog.add(source, name)

    def models(self) -> list[ModelInfo]:
        """The base first, then every adapter known now, with memory (loaded) or disk size, and compatibility."""
        with self.host.modules_lock:
            base_bytes, loaded_bytes = self.host.base_size, dict(self.host.sizes)
        loaded = self.host.model is not None
        base = ModelInfo(self.base_name, "base", self.base_name, loaded, base_bytes,
                         decoding=self.decoding_path() if loaded else "")
        return [base, *self.catalog.listing(loaded_bytes)]

    def decoding_path(self) -> str:
        """How greedy chat answers are decoded on this base, for the model list: fast_step.py's step, or the model's
        full forward and why (both give the adapters' exact answers; the fast step is faster)."""
        from models.local.fast_step import FastStep

        if not self.use_lean_decode:
            return "generate (the lean decoding loop is switched off)"
        if not self.use_fast_step:
            return "full forward per step (the fast step is switched off)"
        reason = FastStep.unsupported_reason(self.model)
        return "fast step (models/local/fast_step.py)" if reason is None else f"full forward per step: {reason}"

    def usable_models(self) -> list[str]:
        return [m.name for m in self.models() if m.compatible]

    def model_for(self, name: str | None):
        """The ChatModel for the base (None or its name) or an adapter known now."""
        from models.local.model import InProcessModel

        adapter = adapter_of(name, self.base_name)
        if adapter is not None:
            self.catalog.check(adapter)
        return InProcessModel(self, adapter)

    # ---- the host (each change to the model holds the queue turn) --------------------------------------------
    def attach(self, name: str) -> list[Unload]:
        """Load a model into memory now (generation does it on first use anyway); returns what it unloaded."""
        unloaded: list[Unload] = []
        with self.queue.turn():
            self.host.attach(name, {name}, unloaded.append)
        return unloaded

    def unload(self, name: str) -> list[Unload]:
        """Take a model out of memory on request: an adapter, or the base (with every adapter). Loads again on use."""
        events: list[Unload] = []
        with self.queue.turn():
            if name in self.host.attached:
                self.host.detach(name, "request", events.append)
            elif name == self.base_name and self.host.model is not None:
                self.host.unload_base(events.append)
            else:
                raise RegistryError(f"{name!r} is not loaded; loaded: {', '.join(self.loaded()) or 'nothing'}")
        return events

    def loaded(self) -> list[str]:
        return self.host.loaded()

    def set_memory_budget(self, budget_bytes: int | None) -> None:
        """Takes effect at the next attach (nothing is unloaded now: a request may be generating)."""
        if budget_bytes is not None and budget_bytes <= 0:
            raise RegistryError(f"the memory budget must be positive, got {budget_bytes} bytes")
        self.host.memory_budget_bytes = budget_bytes

    # ---- the generator -------------------------------------------------------------------------------------
    def render(self, prompt: Prompt) -> str:
        """Chat messages -> the model's prompt text (template applied); raw strings pass through unchanged."""
        return self.generator.render(prompt)

    def stream(self, panes: Sequence[tuple[str | None, Prompt]], settings: GenerationSettings = GenerationSettings(),
               stop: threading.Event | None = None,
               on_unload: Callable[[Unload], None] | None = None) -> Iterator[StreamState]:
        """Answer several (model, prompt) panes in one batch, yielding every pane's text so far (generator.py)."""
        return self.generator.stream(panes, settings, stop, on_unload)

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

    def context_limit(self) -> int | None:
        """Tokens the base model can attend to, prompt and answer together (None: it does not say)."""
        return self.generator.context_limit()

    def next_token_logits(self, prompts: Sequence[Prompt], adapter: str | None = None):
        """Scores of the token after each prompt [len(prompts), vocab], float32 on the CPU (generator.py)."""
        return self.generator.next_token_logits(prompts, adapter)


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
