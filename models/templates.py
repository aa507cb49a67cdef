"""Chat templates and the default system prompt: one place for training, chat and evaluation.

A model's own chat template (from its tokenizer) always wins; ChatML, as Qwen2.5 writes it, is the project's
template for base models that have none (the demo model is built with it). Remote engines apply the template of the
model they serve; the in-process model applies its tokenizer's, so the same messages give the same prompt text
when both serve the same model directory.
"""

from __future__ import annotations

# ChatML, as Qwen2.5 uses: the project's default template for base models that have none.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
DEFAULT_SYSTEM = "你是一名专业、严谨的医学助手。"

Messages = list[dict[str, str]]


def ensure_chat_template(tokenizer) -> None:
    """Give a tokenizer without a chat template the project's ChatML one (base models often ship none)."""
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE


def render(tokenizer, prompt: str | Messages) -> str:
    """Chat messages -> the model's prompt text (template applied, assistant turn opened); raw strings unchanged."""
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
