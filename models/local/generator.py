"""The generator: answers for several (model, prompt) panes in one batch, streamed, from the host's loaded model.

Several panes are answered in one batch: peft's `adapter_names=[...]` routes each row of the batch through its own
adapter (or none: peft's "__base__", PEFT_BASE), which gives each row exactly what that adapter alone gives;
models/local/batched_lora.py does the same in two batched matrix products (tests/test_chat_registry.py checks
both token for token). Greedy answers take models/local/decode.py's lean loop with models/local/fast_step.py's step
where they give the same tokens; everything else takes transformers' `generate`.

All work on the model goes through one FIFO `GenerationQueue`: a request waits for its turn in a worker thread and
the caller sees its place in line.
"""

from __future__ import annotations

import functools
import threading
from contextlib import nullcontext
from typing import Callable, Iterator, Sequence

from models.interface import adapter_of, model_name
from models.local.batched_lora import batched_lora
from models.local.catalog import RegistryError
from models.local.decode import greedy_decode, lean_decode_supported
from models.local.host import ModelHost, Unload
from models.local.queue import GenerationQueue
from models.local.streaming import UPDATE_INTERVAL_S, PaneStreamer, StopOnEvent, StreamState
from models.settings import GenerationSettings
from models.templates import render

PEFT_BASE = "__base__"  # peft's name for "no adapter" in a mixed-adapter batch
Messages = list[dict[str, str]]
Prompt = str | Messages  # a raw prompt (no template applied), or chat messages


class Generator:
    def __init__(self, host: ModelHost, queue: GenerationQueue, *, batched_lora: bool = True,
                 lean_decode: bool = True, fast_step: bool = True):
        self.host, self.queue = host, queue
        self.use_batched_lora = batched_lora  # our two-bmm mixed batch (batched_lora.py); False: peft's own
        self.use_lean_decode = lean_decode  # greedy answers by decode.py's loop; False: always `generate`
        self.use_fast_step = fast_step  # in that loop, fast_step.py's step where it applies; False: the forward
        self.update_interval_s = UPDATE_INTERVAL_S  # least time between two streamed updates (not the first, the end)

    def render(self, prompt: Prompt) -> str:
        self.host.ensure_base()
        return render(self.host.tokenizer, prompt)

    def stream(self, panes: Sequence[tuple[str | None, Prompt]], settings: GenerationSettings,
               stop: threading.Event | None = None,
               on_unload: Callable[[Unload], None] | None = None) -> Iterator[StreamState]:
        """Answer several (model, prompt) panes in one batch, yielding every pane's text so far after each step.

        `model` is a model name (models/interface.py: the base's reference, or None, for the base; else an
        adapter). Leaving the loop early (or setting `stop`) stops the generation and frees the queue. `on_unload`
        hears of every adapter detached to make room for this request (called from the generating thread).
        """
        base = self.host.base_name
        if not panes:
            raise RegistryError("no model selected")
        names = [model_name(adapter_of(m, base), base) for m, _ in panes]
        for name in names:
            if name != base:
                self.host.catalog.check(name)
        batch = self.encode([self.render(p) for _, p in panes], settings)
        stop = stop or threading.Event()
        streamer = PaneStreamer(self.host.tokenizer, len(panes), self.eos_ids(), batch["input_ids"].shape[1],
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

        host = self.host
        try:
            while not self.queue.wait(ticket, timeout=0.1):
                if stop.is_set():
                    return
            for name in dict.fromkeys(names):
                host.attach(name, set(names), on_unload)
            kwargs = settings.generate_kwargs()
            if not settings.greedy:
                torch.manual_seed(settings.seed)  # under the queue turn, so no other request touches the RNG
            device = host.model.device
            kwargs.update(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                          streamer=streamer, stopping_criteria=[StopOnEvent(stop)],
                          pad_token_id=host.tokenizer.pad_token_id)
            decode = functools.partial(self._decode, settings, stop)
            if not host.attached:  # no adapter ever attached: the plain model
                decode(kwargs)
                return
            rows = [host.attached.get(n) for n in names]  # None: the base, adapters off
            fast = batched_lora(host.model, rows) if self.use_batched_lora else nullcontext(False)
            with fast as batched:
                if batched:
                    decode(kwargs)
                elif len(set(rows)) == 1:  # one model for the whole batch: peft's ordinary path
                    self._generate_one_model(rows[0], kwargs, decode)
                else:  # peft's own mixed batch: each row through its adapter, "__base__" = adapters off
                    host.model.generate(adapter_names=[r or PEFT_BASE for r in rows], **kwargs)
        except Exception as exc:  # handed to the consuming thread, which re-raises it
            if isinstance(exc, ValueError) and not isinstance(exc, RegistryError):  # peft/transformers refusals
                exc = RegistryError(f"{', '.join(sorted(set(names)))}: {exc}")
            streamer.fail(exc)
        finally:
            self.queue.leave(ticket)
            streamer.end()

    def _generate_one_model(self, peft_name: str | None, kwargs: dict, decode: Callable[[dict], None]) -> None:
        if peft_name is None:
            with self.host.model.disable_adapter():
                decode(kwargs)
        else:
            self.host.model.set_adapter(peft_name)
            decode(kwargs)

    def _decode(self, settings: GenerationSettings, stop: threading.Event, kwargs: dict) -> None:
        """`generate`, or decode.py's lean greedy loop where it gives the same answers (greedy, nothing else asked
        by the model's generation config)."""
        model = self.host.model
        if self.use_lean_decode and lean_decode_supported(model.generation_config, settings):
            greedy_decode(model, kwargs["input_ids"], kwargs["attention_mask"], settings, self.eos_ids(),
                          kwargs["pad_token_id"], kwargs["streamer"], stop, fast_step=self.use_fast_step)
        else:
            model.generate(**kwargs)

    def encode(self, texts: list[str], settings: GenerationSettings):
        self.host.ensure_base()
        batch = self.host.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        limit = self.context_limit()
        longest = int(batch["attention_mask"].sum(dim=1).max())
        if limit and longest + settings.max_new_tokens > limit:
            raise RegistryError(
                f"the conversation is {longest} tokens; with max_new_tokens={settings.max_new_tokens} it exceeds the "
                f"model's context of {limit} tokens: clear the chat or lower max_new_tokens"
            )
        return batch

    def context_limit(self) -> int | None:
        """Tokens the base model can attend to (prompt + answer): its config's max positions, or the tokenizer's
        `model_max_length` when that is smaller and real (tokenizers without one say 1e30)."""
        self.host.ensure_base()
        limits = [getattr(self.host.model.config, "max_position_embeddings", None),
                  getattr(self.host.tokenizer, "model_max_length", None)]
        limits = [int(n) for n in limits if isinstance(n, int) and 0 < n < 10_000_000]
        return min(limits) if limits else None

    def eos_ids(self) -> set[int]:
        self.host.ensure_base()
        eos = self.host.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.host.tokenizer.eos_token_id is not None:
            ids.add(self.host.tokenizer.eos_token_id)
        return ids

    def next_token_logits(self, prompts: Sequence[Prompt], adapter: str | None = None):
        """Scores of the token after each prompt, from one batched forward pass (Evaluate's likelihood method).

        Returns a float32 CPU tensor [len(prompts), vocab]. The base (adapter None) runs with every adapter off.
        Rows are left-padded, with positions counted from each row's first real token as `generate` does, so a
        row scores the same whatever else is in its batch.
        """
        import torch
        from peft import PeftModel

        host = self.host
        name = model_name(adapter, host.base_name)
        if name != host.base_name:
            host.catalog.check(name)
        texts = [self.render(p) for p in prompts]
        with self.queue.turn():
            host.attach(name, {name})
            batch = self.encode(texts, GenerationSettings(max_new_tokens=1))
            mask = batch["attention_mask"]
            device = host.model.device
            kwargs = dict(input_ids=batch["input_ids"].to(device), attention_mask=mask.to(device),
                          position_ids=(mask.cumsum(-1) - 1).clamp(min=0).to(device), logits_to_keep=1)
            peft_name = host.attached.get(name)
            if peft_name is not None:
                host.model.set_adapter(peft_name)
            off = host.model.disable_adapter() if peft_name is None and isinstance(host.model, PeftModel) \
                else nullcontext()
            with torch.inference_mode(), off:
                logits = host.model(**kwargs).logits[:, -1, :]
            return logits.float().cpu()
