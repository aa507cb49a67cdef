"""The adapter catalog: which LoRA adapters exist for the loaded base, by name. Reads disk; never loads weights.

Adapters are named by their directory under `<data_dir>/adapters/` (found on every call, so newly trained ones
appear without a restart), or by the name given when a local path or hub id is added. An adapter trained on
another base is listed as unusable, with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from models.atomic import is_temp_name
from models.interface import ModelError
from models.refs import canonical_ref


class RegistryError(ModelError):
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


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("adapter_model.*")) if path.is_dir() else 0


def weights_stamp(path: Path) -> tuple:
    """The adapter's weight files' (name, mtime, size): a change means it was retrained under the same name."""
    files = sorted(path.glob("adapter_model.*")) if path.is_dir() else []
    return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)


class AdapterCatalog:
    def __init__(self, base_name: str, adapters_dir: Path | None):
        self.base_name = base_name
        self.adapters_dir = adapters_dir
        self._extra: dict[str, str] = {}  # adapters added by path or hub id: name -> source

    def add(self, source: str, name: str | None = None) -> str:
        """Make an adapter known by a local directory or hub id (not loaded yet); returns its name."""
        path = Path(source)
        if is_temp_name(path.name):  # an adapter still being written (or left by a killed job): not a model
            raise RegistryError(f"adapter {source!r}: no such adapter")
        if path.is_dir() and not (path / "adapter_config.json").exists():
            raise RegistryError(f"{path}: no adapter_config.json, so this is not a PEFT adapter directory")
        if not path.is_dir() and self.adapters_dir is not None and (self.adapters_dir / source).is_dir():
            return self.check(source)  # a fine-tune job's adapter, by its name
        if not path.is_dir() and (source.startswith((".", "/")) or source.count("/") != 1):
            raise RegistryError(f"adapter {source!r}: no such directory, and not a hub id (owner/name)")
        name = name or (path.name if path.is_dir() else source)
        if name == self.base_name:
            raise RegistryError(f"adapter name {name!r} is the base model's name; give it another name")
        self._extra[name] = str(path.resolve()) if path.is_dir() else source
        return name

    def forget(self, name: str) -> None:
        """An added path or hub id that does not load (a typo, no network) would otherwise stay in every user's
        model list until a restart. Adapters found on disk are listed by the scan anyway."""
        self._extra.pop(name, None)

    def check(self, name: str) -> str:
        """`name` is an adapter known now and made for this base (reads that adapter's config only)."""
        source = self.scan().get(name)
        if source is None:
            known = [self.base_name, *self.scan()]
            raise RegistryError(f"unknown model {name!r}; known: {', '.join(known)}")
        ok, reason = self.compatibility(name, source)
        if not ok:
            raise RegistryError(f"adapter {name!r} cannot be used with base {self.base_name!r}: {reason}")
        return name

    def source(self, name: str) -> str:
        return self.scan()[name]

    def compatibility(self, name: str, source: str) -> tuple[bool, str]:
        """(usable with this base, why not)."""
        try:
            base = self._adapter_base(source)
        except RegistryError as exc:
            return False, str(exc)
        if name == self.base_name:
            return False, "its name is the base model's name"
        return (True, "") if self._same_base(base) else (False, f"trained on {base!r}")

    def scan(self) -> dict[str, str]:
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
        return canonical_ref(ref) == canonical_ref(self.base_name)

    def listing(self, loaded_bytes: dict[str, int]) -> list[ModelInfo]:
        """Every adapter known now, with memory (`loaded_bytes`, when attached) or disk size, and compatibility."""
        rows = []
        for name, source in self.scan().items():
            ok, reason = self.compatibility(name, source)
            loaded = name in loaded_bytes
            size = loaded_bytes[name] if loaded else disk_bytes(Path(source))
            rows.append(ModelInfo(name, "adapter", source, loaded, size, ok, reason))
        return rows
