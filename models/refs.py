"""Model references and hubs: what users type ("demo", a hub id, a local directory) -> what from_pretrained takes.

Hubs: Hugging Face (default; `HF_ENDPOINT` points huggingface_hub at a mirror with the same repo ids, and is
passed through untouched) or ModelScope (`--hub modelscope` or `MEDTUNE_HUB=modelscope`), whose
`snapshot_download` fetches the model into `MODELSCOPE_CACHE` and returns the local directory. ModelScope is an
optional extra (`pip install -e ".[modelscope]"`): without it a ModelScope reference fails with a message that says
how to install it, never silently falls back to the other hub.
"""

from __future__ import annotations

import os
from pathlib import Path

from models.demo import DEMO_MODEL_NAME, cache_root, demo_model_dir

HUBS = ("huggingface", "modelscope")
HUB_ENV = "MEDTUNE_HUB"


class HubError(ValueError):
    """A model reference cannot be resolved on the hub asked for; the message says which setting and why."""


def current_hub(hub: str | None = None) -> str:
    """The hub asked for: `hub` when given, else $MEDTUNE_HUB, else Hugging Face."""
    chosen = (hub or os.environ.get(HUB_ENV) or "huggingface").strip().lower()
    if chosen in ("hf", "hugging-face"):
        chosen = "huggingface"
    if chosen not in HUBS:
        source = "--hub" if hub else HUB_ENV
        raise HubError(f"{source}: unknown hub {chosen!r}; use one of {', '.join(HUBS)}")
    return chosen


def resolve_model(ref: str, hub: str | None = None) -> str:
    """A model reference -> a local directory or a Hugging Face id that `from_pretrained` takes.

    The demo model and local directories never touch a hub. A hub id goes to ModelScope when that hub is asked
    for (downloaded there, the directory returned); otherwise transformers fetches it from Hugging Face (or the
    `HF_ENDPOINT` mirror) itself."""
    if ref == DEMO_MODEL_NAME:
        return str(demo_model_dir())
    if Path(ref).is_dir() or current_hub(hub) == "huggingface":
        return ref
    return modelscope_snapshot(ref)


def modelscope_snapshot(model_id: str, revision: str | None = None) -> str:
    try:
        from modelscope import snapshot_download
    except ImportError as exc:
        raise HubError(f"model {model_id!r}: the ModelScope hub needs the optional modelscope package "
                       f"(pip install -e \".[modelscope]\"), which is not installed ({exc})") from None
    try:
        return str(snapshot_download(model_id, revision=revision))
    except Exception as exc:  # modelscope raises its own HTTP/hub types; all mean "cannot get it from there"
        raise HubError(f"model {model_id!r} cannot be downloaded from ModelScope: {exc}") from exc


BASE_FILE = "medtune_base.json"  # beside adapter_config.json: the base as the user named it, and its hub


def record_adapter_base(adapter_dir: Path | str, ref: str, hub: str | None = None) -> None:
    """An adapter records the hub its base came from, so that merge and chat load the same base (a hub id can name
    different snapshots on Hugging Face and ModelScope). Its own file: peft warns about unknown adapter_config keys."""
    import json

    (Path(adapter_dir) / BASE_FILE).write_text(json.dumps({"base": ref, "hub": current_hub(hub)}, indent=2) + "\n",
                                               encoding="utf-8")


def adapter_hub(adapter_dir: Path | str) -> str | None:
    """The hub an adapter's base came from, or None when it did not record one (trained before, or elsewhere)."""
    import json

    try:
        hub = json.loads((Path(adapter_dir) / BASE_FILE).read_text(encoding="utf-8")).get("hub")
    except (OSError, ValueError, AttributeError):
        return None
    return hub if hub in HUBS else None


def canonical_ref(ref: str) -> str:
    """One spelling per base model, to compare the base an adapter was trained on with the one loaded: the demo
    model by name (its cached directory is versioned), a local directory by its resolved path, a hub id as is."""
    path = Path(ref)
    if ref == DEMO_MODEL_NAME or (path.parent.resolve() == cache_root().resolve() and path.name.startswith("demo-v")):
        return DEMO_MODEL_NAME
    return str(path.resolve()) if path.is_dir() else ref
