"""Interactive chat in a terminal, like `xtuner chat`: one model, or with --compare the base and every adapter.

    python -m chat --model demo --adapter my-lora                 # chat with one adapter (streamed)
    python -m chat --model demo --adapter a --adapter b --compare # every prompt answered by base, a and b
    python -m chat --adapter a --prompt "头痛怎么办？"               # one-shot, no prompt loop
    python -m chat --endpoint http://127.0.0.1:8000/v1 --model my-adapter --compare --prompt "头痛怎么办？"

With --endpoint, --model names a model that server serves (its /v1/models lists them); --compare then answers
with it and its parent (a vLLM adapter's base), or with every model the server lists when no --model is given.

In the loop: /use NAME switches model, /models lists them, /reset clears the conversation, /exit leaves.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, TextIO

import safeio
from safeio import ExitStatus
from chat.panes import stream_panes
from chat.session import add_turn, with_system
from models.directory import ModelDirectory
from models.interface import ModelError
from models.local.registry import ModelRegistry
from models.remote.endpoints import EndpointError, parse_endpoint_flags
from models.remote.model import remote_name
from models.settings import GenerationSettings

HELP = "commands: /use NAME (switch model), /models, /reset (clear history), /help, /exit"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m chat", description="Chat with a base model and its LoRA adapters.",
                                formatter_class=safeio.HelpFormatter,
                                epilog=safeio.exit_epilog(ExitStatus.OK, ExitStatus.USAGE, ExitStatus.MODEL_UNUSABLE,
                                                          ExitStatus.INTERRUPTED))
    p.add_argument("--model", action="append", default=[],
                   help='base model: hub id, local directory, or "demo" (default; env MEDTUNE_MODEL); with '
                        '--endpoint: a served model name (repeatable)')
    p.add_argument("--hub", default=None, help="huggingface (default) or modelscope (env MEDTUNE_HUB)")
    p.add_argument("--endpoint", action="append", default=[], metavar="[NAME=]URL",
                   help="an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1) to chat with instead")
    p.add_argument("--endpoint-key", action="append", default=[], metavar="NAME=ENV_VAR",
                   help="the environment variable that holds an endpoint's key (never the key itself)")
    p.add_argument("--adapter", action="append", default=[], metavar="A",
                   help="adapter: a name under DATA_DIR/adapters, a local directory or a hub id (repeatable)")
    p.add_argument("--compare", action="store_true", help="answer every prompt with the base and every adapter")
    p.add_argument("--data-dir", default=str(safeio.default_data_dir()), help=safeio.DATA_DIR_HELP)
    p.add_argument("--prompt", action="append", default=[], help="ask this (repeatable, as successive turns) and exit")
    p.add_argument("--system", default="", help="system prompt")
    p.add_argument("--max-new-tokens", type=int, default=256, help="answer length cap (tokens)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling; 1 = off")
    p.add_argument("--top-k", type=int, default=0, help="sample from the k likeliest tokens; 0 = off")
    p.add_argument("--repetition-penalty", type=float, default=1.0, help="1 = off")
    p.add_argument("--seed", type=int, default=0, help="random seed for sampling")
    p.add_argument("--device", default=None, help="cuda, cpu, mps (default: what the machine has)")
    p.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default: chosen by device)")
    p.add_argument("--load-in-4bit", action="store_true", help="4-bit base weights (CUDA with bitsandbytes)")
    p.add_argument("--trust-remote-code", action="store_true", help="run the model repository's own code")
    safeio.add_verbose(p)
    return p.parse_args(argv)


class Terminal:
    """The chat loop's state: which models answer, and each one's history."""

    def __init__(self, directory: ModelDirectory, models: list[str], system: str, settings: GenerationSettings,
                 out: TextIO):
        self.directory, self.models, self.system, self.settings, self.out = directory, models, system, settings, out
        self.histories: dict[str, list] = {}

    def ask(self, prompt: str) -> None:
        panes = [(m, with_system(self.system, self.histories.get(m, []), prompt)) for m in self.models]
        if len(panes) == 1:
            state = self._stream_one(panes)
        else:
            state = None
            for state in stream_panes(self.directory, panes, self.settings):
                pass
            for model, text, error in zip(self.models, state.texts, state.errors or [None] * len(panes)):
                self.out.write(f"=== {model} ===\n{text}\n" + (f"[failed: {error}]\n" if error else ""))
        speed = max(state.tokens_per_s(), default=0.0)
        self.out.write(f"[{max(state.tokens)} tokens, {speed:.1f} tokens/s, first token {state.first_token_s or 0:.2f} s]\n")
        self.out.flush()
        self.histories = add_turn(self.histories, self.models, prompt, state.texts)

    def _stream_one(self, panes):
        shown, state = 0, None
        for state in stream_panes(self.directory, panes, self.settings):
            text = state.texts[0]
            self.out.write(text[shown:])
            self.out.flush()
            shown = len(text)
        self.out.write("\n")
        if state.errors and state.errors[0]:
            raise ModelError(state.errors[0])
        return state

    def command(self, line: str) -> bool:
        """Handle a /command; False means leave."""
        word, _, arg = line.partition(" ")
        if word in ("/exit", "/quit"):
            return False
        if word == "/reset":
            self.histories = {}
        elif word == "/models":
            for m in self.directory.listing():
                mark = "*" if m.name in self.models else " "
                note = "" if m.compatible else f"  (cannot be used: {m.reason})"
                note += f"  (decoding: {m.decoding})" if m.decoding else ""
                self.out.write(f"{mark} {m.name}  [{m.kind}]{note}\n")
        elif word == "/use" and arg.strip():
            name = arg.strip()
            if name not in self.directory.usable_models():
                if self.directory.registry is None:
                    raise ModelError(f"unknown model {name!r}; /models lists them")
                name = self.directory.registry.add_adapter(name)
            self.models = [name]
        else:
            self.out.write(HELP + "\n")
        return True


def run_loop(term: Terminal, read: Callable[[str], str]) -> None:
    while True:
        try:
            line = read(">>> ").strip()
        except EOFError:
            return
        if not line:
            continue
        try:
            if line.startswith("/"):
                if not term.command(line):
                    return
            else:
                term.ask(line)
        except ValueError as exc:  # ModelError (a model that cannot answer) is one
            term.out.write(f"error: {exc}\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    safeio.quiet_libraries(args.verbose)
    try:
        settings = GenerationSettings(args.max_new_tokens, args.temperature, args.top_p, args.top_k,
                                      args.repetition_penalty, args.seed)
        directory, models = _models(args)
        term = Terminal(directory, models, args.system, settings, sys.stdout)
        if args.prompt:
            for prompt in args.prompt:
                term.ask(prompt)
            return ExitStatus.OK
        sys.stderr.write(f"chatting with {', '.join(models)} ({HELP})\n")
        run_loop(term, input)
    except EndpointError as exc:  # a malformed --endpoint / --endpoint-key flag
        sys.stderr.write(f"error: {exc}\n")
        return ExitStatus.USAGE
    except ModelError as exc:  # a model or adapter that cannot be loaded or cannot answer
        sys.stderr.write(f"error: {exc}\n")
        return ExitStatus.MODEL_UNUSABLE
    except ValueError as exc:  # bad settings, a malformed --endpoint flag
        sys.stderr.write(f"error: {exc}\n")
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return ExitStatus.INTERRUPTED
    return ExitStatus.OK


def _models(args) -> tuple[ModelDirectory, list[str]]:
    """The models to chat with: in-process (base, adapters) or, with --endpoint, served ones."""
    if not args.endpoint:
        if len(args.model) > 1:
            raise ValueError("give one --model (the base); compare adapters with --adapter A --adapter B --compare")
        base = args.model[0] if args.model else os.environ.get("MEDTUNE_MODEL", "demo")
        registry = ModelRegistry(base, args.data_dir, device=args.device, dtype=args.dtype, hub=args.hub,
                                 load_in_4bit=args.load_in_4bit, trust_remote_code=args.trust_remote_code)
        adapters = [registry.add_adapter(a) for a in args.adapter]
        models = [registry.base_name, *adapters] if args.compare else adapters[:1] or [registry.base_name]
        return ModelDirectory(registry), models
    if args.adapter:
        raise ValueError("--adapter names an in-process adapter; with --endpoint, name served models with --model")
    endpoints = parse_endpoint_flags(args.endpoint, args.endpoint_key)
    directory = ModelDirectory(None, endpoints)
    listed = [(e, m) for e in endpoints for m in directory.served(e)]
    if args.model:
        chosen = [(e, m) for e, m in listed if m["id"] in args.model]
        missing = sorted(set(args.model) - {m["id"] for _, m in chosen})
        if missing:
            raise ModelError(f"the endpoint serves no model {', '.join(map(repr, missing))}; it serves "
                             f"{', '.join(m['id'] for _, m in listed)}")
        if args.compare:  # each model beside its parent (a vLLM adapter's base)
            parents = {(e.name, m.get("parent")) for e, m in chosen if m.get("parent")}
            chosen = [(e, m) for e, m in listed if (e.name, m["id"]) in parents] + chosen
    else:
        chosen = listed if args.compare else listed[:1]
    names = [remote_name(m["id"], e.name) for e, m in chosen]
    return directory, list(dict.fromkeys(names))
