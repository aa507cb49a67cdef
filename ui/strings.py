"""Every user-visible string of the app, in one place (English first; Chinese beside it for the language switch).

Each tab owns one block of keys prefixed with its name. Add keys with small edits; never rewrite this file whole.
"""

from __future__ import annotations

STRINGS: dict[str, tuple[str, str]] = {
    # --- app ---
    "app.title": ("Medical model workbench", "医疗模型工作台"),
    "app.subtitle": (
        "Fine-tune, compare and score small chat models on Chinese medical data.",
        "在中文医疗数据上微调、对比和评测小型对话模型。",
    ),
    "app.demo_model_note": (
        "Running on the built-in **demo** model (tiny, trained on the bundled samples: it knows no medicine). "
        "Start with `--model Qwen/Qwen2.5-0.5B-Instruct` or set `MEDTUNE_MODEL` for a real one.",
        "当前使用内置**演示**模型（极小，只在自带样例上训练过，不具备医学知识）。"
        "用 `--model Qwen/Qwen2.5-0.5B-Instruct` 或设置 `MEDTUNE_MODEL` 以使用真实模型。",
    ),
    # --- score tab ---
}


def t(key: str, lang: str = "en") -> str:
    english, chinese = STRINGS[key]
    return chinese if lang == "zh" else english
