"""The built-in demo model: a tiny Qwen2-shaped chat model the project builds itself, offline and deterministically.

With no network and no model given, the app and every CLI still work end to end on this model. It is built from a
config, with a byte-level BPE tokenizer trained on the project's own sample data (`data/*.jsonl`), then briefly
trained on the same sample conversations so that its answers look like medical Chinese rather than random bytes.
It knows nothing: the UI labels it as a demo. The result is cached (default `~/.cache/medtune/models/`, or
`$MEDTUNE_HOME/models/`) and rebuilt only when the recipe version changes.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from models.atomic import atomic_dir
from models.templates import CHATML_TEMPLATE, DEFAULT_SYSTEM

DEMO_MODEL_NAME = "demo"  # what users type (`--model demo`) and what the UI shows, labelled as a demo
RECIPE_VERSION = 3  # bump when anything below changes the built model, so caches rebuild
DATA_DIR = Path(__file__).resolve().parent.parent / "data"

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@dataclass(frozen=True)
class DemoRecipe:
    vocab_size: int = 3000
    hidden_size: int = 128
    intermediate_size: int = 352
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    max_positions: int = 1024
    train_steps: int = 200
    batch_size: int = 8
    seq_len: int = 128
    learning_rate: float = 3e-3
    seed: int = 1234


def cache_root() -> Path:
    return Path(os.environ.get("MEDTUNE_HOME", Path.home() / ".cache" / "medtune")) / "models"


def demo_model_cached() -> bool:
    return (cache_root() / f"demo-v{RECIPE_VERSION}" / "config.json").exists()


def demo_model_dir(recipe: DemoRecipe = DemoRecipe()) -> Path:
    """The directory of the demo model, building it on first use (a few seconds to a minute on a CPU)."""
    final = cache_root() / f"demo-v{RECIPE_VERSION}"
    if (final / "config.json").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    # Several processes (app workers, test runs) may ask at once: one builds, the others wait on the lock.
    with open(final.parent / ".demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (final / "config.json").exists():
            build_demo_model(final, recipe)
    return final


def build_demo_model(out_dir: Path, recipe: DemoRecipe = DemoRecipe()) -> Path:
    """Build the model and write it to out_dir atomically, so a crash never leaves half a model."""
    texts = sample_texts()
    tokenizer = train_tokenizer(texts, recipe)
    model = init_model(tokenizer, recipe)
    pretrain(model, tokenizer, sample_conversations(), recipe)
    model.generation_config.do_sample = False
    with atomic_dir(out_dir, replace=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "demo_recipe.json").write_text(
            json.dumps({"version": RECIPE_VERSION, **asdict(recipe)}, indent=2), encoding="utf-8"
        )
    return out_dir


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def sample_texts() -> list[str]:
    """Every string in the project's own sample data, the tokenizer's training text."""
    texts: list[str] = []

    def collect(value) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                collect(v)
        elif isinstance(value, list):
            for v in value:
                collect(v)

    paths = sorted(p for p in DATA_DIR.glob("*.jsonl") if "predictions" not in p.name)
    if not paths:
        raise FileNotFoundError(f"no sample data under {DATA_DIR}; the demo model is trained from it")
    for path in paths:
        for row in _read_jsonl(path):
            collect(row)
    return texts


def sample_conversations() -> list[list[dict[str, str]]]:
    """The sample instruction and question/answer pairs as chat messages, for the demo model's short training."""
    conversations = []
    for row in _read_jsonl(DATA_DIR / "train_sample.jsonl"):
        prompt = "\n".join(p for p in (row.get("instruction", ""), row.get("input", "")) if p)
        system = row.get("system") or DEFAULT_SYSTEM
        conversations.append(_chat(system, prompt, row["output"]))
    for row in _read_jsonl(DATA_DIR / "qa_sample.jsonl"):
        conversations.append(_chat(DEFAULT_SYSTEM, row["input"], row["output"]))
    return conversations


def _chat(system: str, user: str, assistant: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
        {"role": "assistant", "content": assistant},
    ]


def train_tokenizer(texts: list[str], recipe: DemoRecipe):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    # Byte-level BPE never produces <unk>: any user text (English, rare characters) still tokenises.
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=recipe.vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        chat_template=CHATML_TEMPLATE,
        model_max_length=recipe.max_positions,
        padding_side="left",
    )


def init_model(tokenizer, recipe: DemoRecipe):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(recipe.seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers,
        num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_kv_heads,
        max_position_embeddings=recipe.max_positions,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    return Qwen2ForCausalLM(config)


def pretrain(model, tokenizer, conversations: list[list[dict[str, str]]], recipe: DemoRecipe) -> None:
    """A few hundred seeded AdamW steps on the sample chats: enough for medical-looking output, not knowledge."""
    import torch

    # One thread: for a model this small, OpenMP's second thread costs more than it gives, and on a busy machine
    # (an app serving users, a test run) it made each step ~6x slower (measured: 2.3 s vs 0.37 s per step).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _train_steps(model, tokenizer, conversations, recipe)
    finally:
        torch.set_num_threads(threads)
    model.eval()


def _train_steps(model, tokenizer, conversations: list[list[dict[str, str]]], recipe: DemoRecipe) -> None:
    import torch

    generator = torch.Generator().manual_seed(recipe.seed)
    rows = [tokenizer.apply_chat_template(c, tokenize=True, return_dict=False) for c in conversations]
    rows = [list(r["input_ids"]) if isinstance(r, dict) else list(r) for r in rows]
    stream = [tok for row in rows for tok in row]  # one long stream, cut into fixed windows below
    n_windows = max(1, len(stream) // recipe.seq_len)
    windows = torch.tensor(stream[: n_windows * recipe.seq_len]).view(n_windows, recipe.seq_len)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, recipe.learning_rate, total_steps=recipe.train_steps)
    model.train()
    for _ in range(recipe.train_steps):
        batch = windows[torch.randint(0, n_windows, (recipe.batch_size,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
