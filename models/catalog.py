"""The catalog of models people fine-tune for Chinese medical work: sizes and memory computed from config numbers,
whether a model fits this machine now, whether it is already in the Hugging Face cache; downloads and deletion.

No gradio, no network unless a download is asked for. The config numbers of the curated models ship in
models/catalog.json (a few integers each, typed from their published config.json), so a machine without network
still shows every model's size. `parameters()` is the one formula, tested against real models built from configs.

Memory figures are estimates to load the weights and chat: the weights at their precision plus OVERHEAD (the CUDA
context or runtime, activations and a KV cache of a few thousand tokens). Training needs more (see the presets).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

CATALOG_FILE = Path(__file__).with_name("catalog.json")
OVERHEAD = 0.2  # fraction on top of the weights: runtime, activations, a small KV cache
# bitsandbytes NF4 keeps 4 bits per weight of each decoder linear layer, plus one absmax per 64 weights (double
# quantisation: 8 bits, plus a small second-level table): ~4.13 bits. Embeddings, the LM head and norms stay bf16.
NF4_BITS = 4.0 + 8.0 / 64 + 32.0 / (64 * 256)


@dataclass(frozen=True)
class ModelShape:
    """What a decoder-only transformer's size follows from (Llama / Qwen / InternLM / GLM-4-hf / ERNIE-4.5 family:
    RMSNorm, GQA attention, SwiGLU MLP)."""
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool = False  # the LM head shares the embedding matrix
    head_dim: int = 0  # 0: hidden // heads
    qkv_bias: bool = False  # Qwen2/2.5 and GLM-4 add biases to q, k and v
    qk_norm: bool = False  # Qwen3 normalises q and k per head

    @property
    def dim(self) -> int:
        return self.head_dim or self.hidden // self.heads

    @classmethod
    def from_config(cls, config: dict) -> "ModelShape":
        """From a transformers config.json (as a dict): the keys every Llama-like config carries."""
        model_type = config.get("model_type", "")
        return cls(hidden=config["hidden_size"], layers=config["num_hidden_layers"],
                   heads=config["num_attention_heads"],
                   kv_heads=config.get("num_key_value_heads") or config["num_attention_heads"],
                   intermediate=config["intermediate_size"], vocab=config["vocab_size"],
                   tied=bool(config.get("tie_word_embeddings", False)), head_dim=config.get("head_dim") or 0,
                   qkv_bias=bool(config.get("attention_bias",
                                            config.get("use_bias", model_type in ("qwen2", "glm")))),
                   qk_norm=model_type.startswith("qwen3"))


def parameters(shape: ModelShape) -> dict[str, int]:
    """Parameter counts: `embedding` (+ LM head when untied), `linear` (the decoder's weight matrices, what 4-bit
    quantises), `other` (biases, norms), and `total`."""
    h, d = shape.hidden, shape.dim
    q, kv = shape.heads * d, shape.kv_heads * d
    attention = h * q + 2 * h * kv + q * h
    mlp = 3 * h * shape.intermediate  # gate, up, down
    bias = (q + 2 * kv) if shape.qkv_bias else 0
    norms = 2 * h + (2 * d if shape.qk_norm else 0)  # two RMSNorms per layer (+ q/k norms)
    embedding = shape.vocab * h * (1 if shape.tied else 2)
    linear = shape.layers * (attention + mlp)
    other = shape.layers * (bias + norms) + h  # + the final norm
    return {"embedding": embedding, "linear": linear, "other": other, "total": embedding + linear + other}


def weight_bytes(shape: ModelShape, quant: str = "bf16") -> int:
    """The weights in memory: "bf16" (2 bytes each) or "4bit" (NF4 decoder linears, the rest bf16)."""
    counts = parameters(shape)
    if quant == "bf16":
        return 2 * counts["total"]
    if quant == "4bit":
        return int(counts["linear"] * NF4_BITS / 8) + 2 * (counts["embedding"] + counts["other"])
    raise ValueError(f"quant: {quant!r} is not 'bf16' or '4bit'")


def memory_needed(shape: ModelShape, quant: str = "bf16") -> int:
    """Bytes to load and chat with the model (weights + OVERHEAD)."""
    return int(weight_bytes(shape, quant) * (1 + OVERHEAD))


@dataclass(frozen=True)
class CatalogModel:
    id: str
    shape: ModelShape
    remote_code: bool = False  # needs trust_remote_code (the user is asked)
    gated: bool = False  # the hub asks for a licence acceptance and a token


def load_catalog(path: Path = CATALOG_FILE) -> list[CatalogModel]:
    """The curated models; a broken entry names the file, the entry and the field."""
    entries = json.loads(path.read_text(encoding="utf-8"))["models"]
    models = []
    for i, entry in enumerate(entries):
        try:
            shape = ModelShape(hidden=entry["hidden"], layers=entry["layers"], heads=entry["heads"],
                               kv_heads=entry["kv_heads"], intermediate=entry["intermediate"], vocab=entry["vocab"],
                               tied=entry.get("tied", False), head_dim=entry.get("head_dim", 0),
                               qkv_bias=entry.get("qkv_bias", False), qk_norm=entry.get("qk_norm", False))
        except KeyError as exc:
            raise ValueError(f"{path}: models[{i}] ({entry.get('id', '?')}): missing field {exc.args[0]!r}") from None
        models.append(CatalogModel(entry["id"], shape, entry.get("remote_code", False), entry.get("gated", False)))
    return models


# --- this machine: does it fit, is it cached ------------------------------------------------------------------

def fits(model: CatalogModel, quant: str, free_bytes: int | None) -> bool | None:
    """Whether the model at `quant` fits in `free_bytes` now (the free GPU memory, or the machine's available RAM
    where there is no GPU); None when the free memory is unknown."""
    return None if free_bytes is None else memory_needed(model.shape, quant) <= free_bytes


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as huggingface_hub reads them; read again on each call."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in ("1", "true", "yes", "on")


def _hub_cache() -> str:
    """huggingface_hub's cache folder, read at each call (HF_HUB_CACHE / HF_HOME, as the hub's own functions do)."""
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))


def cached_path(repo_id: str, cache_dir: str | Path | None = None) -> Path | None:
    """The local snapshot of a hub model when its weights are in the Hugging Face cache (never a network call)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True, cache_dir=cache_dir or _hub_cache()))
    except (LocalEntryNotFoundError, ValueError, OSError):
        return None
    return folder if _has_weights(folder) else None


def cached_models(cache_dir: str | Path | None = None) -> dict[str, int]:
    """Every model in the Hugging Face cache with weights: repo id -> bytes on disk."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(cache_dir or _hub_cache())
    except CacheNotFound:
        return {}
    return {repo.repo_id: repo.size_on_disk for repo in info.repos
            if repo.repo_type == "model" and any(_has_weights(rev.snapshot_path) for rev in repo.revisions)}


def delete_cached(repo_id: str, cache_dir: str | Path | None = None) -> int:
    """Removes every revision of a cached model; returns the bytes freed (0 when it was not cached)."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(cache_dir or _hub_cache())
    except CacheNotFound:
        return 0
    hashes = [rev.commit_hash for repo in info.repos if repo.repo_type == "model" and repo.repo_id == repo_id
              for rev in repo.revisions]
    if not hashes:
        return 0
    strategy = info.delete_revisions(*hashes)
    strategy.execute()
    return strategy.expected_freed_size


# --- downloads: a subprocess per model, so that cancel is immediate and a stuck connection never blocks a worker --

class Download:
    """`huggingface_hub.snapshot_download(repo_id)` in a child process (HF_ENDPOINT picks a mirror). `progress()`
    reads how many bytes have reached the cache against the repository's size, asked once from the hub when it can
    be; `cancel()` ends the child (a partial file stays as huggingface_hub's .incomplete, resumed next time)."""

    def __init__(self, repo_id: str, cache_dir: str | Path | None = None, expected_bytes: int | None = None):
        import subprocess
        import sys

        if hub_offline():
            raise RuntimeError(f"{repo_id}: downloads are unavailable (HF_HUB_OFFLINE is set)")
        self.repo_id, self.expected_bytes = repo_id, expected_bytes
        self.cache = Path(cache_dir or _hub_cache())
        self.folder = self.cache / ("models--" + repo_id.replace("/", "--"))
        self.cancelled = False
        self.proc = subprocess.Popen([sys.executable, "-m", "models.catalog", "download", repo_id, str(self.cache)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True, cwd=Path(__file__).resolve().parent.parent)

    def done_bytes(self) -> int:
        """Bytes in the model's cache folder (finished blobs and .incomplete parts)."""
        blobs = self.folder / "blobs"
        return sum(f.stat().st_size for f in blobs.iterdir() if f.is_file()) if blobs.is_dir() else 0

    def state(self) -> str:
        """"running", "completed", "cancelled" or "failed"."""
        code = self.proc.poll()
        if code is None:
            return "running"
        return "cancelled" if self.cancelled else "completed" if code == 0 else "failed"

    def error(self) -> str:
        """The child's last error line once it failed (no token or key is ever printed by it)."""
        if self.state() != "failed":
            return ""
        lines = [line for line in (self.proc.stderr.read() if self.proc.stderr else "").splitlines() if line.strip()]
        return lines[-1] if lines else f"exit status {self.proc.returncode}"

    def progress(self) -> float | None:
        """0..1 when the size is known."""
        if self.state() == "completed":
            return 1.0
        if not self.expected_bytes:
            return None
        return min(1.0, self.done_bytes() / self.expected_bytes)

    def cancel(self, timeout_s: float = 10) -> None:
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.cancelled = True
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def repo_size(repo_id: str) -> int | None:
    """The repository's total file size from the hub (or the HF_ENDPOINT mirror); None offline or on any error."""
    if hub_offline():
        return None
    try:
        from huggingface_hub import HfApi

        info = HfApi().model_info(repo_id, files_metadata=True, timeout=10)
        return sum(s.size or 0 for s in info.siblings or [])
    except Exception:  # noqa: BLE001 - a size is only a nicety; the download itself reports real errors
        return None


def _download_main(argv: list[str]) -> int:
    from huggingface_hub import snapshot_download

    repo_id, cache_dir = argv
    snapshot_download(repo_id, cache_dir=cache_dir)
    return 0


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 4 and sys.argv[1] == "download":
        sys.exit(_download_main(sys.argv[2:]))
    sys.exit("usage: python -m models.catalog download REPO_ID CACHE_DIR")
