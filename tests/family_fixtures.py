"""Tiny random models of the architectures people fine-tune for Chinese medical work, each with a tokenizer and a
chat template of that family's shape, built from a config in a few seconds (nothing downloaded).

The templates are written here after each family's published template (markers, where the system prompt goes, the
generation prompt, what closes an assistant turn); the tokenizers are byte-level BPE trained on the project's own
sample text, with the family's special tokens, and, where the real tokenizer adds a BOS token on its own
(Llama 3, Gemma, Mistral, InternLM), the same post-processor: the project must never add it twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Qwen3: ChatML, and the assistant turns after the last user message carry an (empty) thinking block.
QWEN3 = (
    "{% set ns = namespace(last_user=-1) %}{% for m in messages %}{% if m['role'] == 'user' %}"
    "{% set ns.last_user = loop.index0 %}{% endif %}{% endfor %}"
    "{% for m in messages %}{% if m['role'] == 'assistant' and loop.index0 > ns.last_user %}"
    "{{ '<|im_start|>assistant\n<think>\n\n</think>\n\n' + m['content'] + '<|im_end|>\n' }}"
    "{% else %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for m in messages %}"
    "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
# GLM-4: no end-of-turn marker; the next turn's <|user|> (the eos token) is what ends an answer.
GLM4 = (
    "[gMASK]<sop>{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)
INTERNLM3 = "{{ bos_token }}" + CHATML
ERNIE45 = (
    "{{ '<|begin_of_sentence|>' }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] + '\n' }}"
    "{% elif m['role'] == 'user' %}{{ 'User: ' + m['content'] + '\n' }}"
    "{% else %}{{ 'Assistant: ' + m['content'] + '<|end_of_sentence|>' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}"
)
HUNYUAN = (
    "{{ '<｜hy_begin▁of▁sentence｜>' }}{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ m['content'] + '<｜hy_place▁holder▁no▁3｜>' }}{% elif m['role'] == 'user' %}{{ '<｜hy_User｜>' + m['content'] }}"
    "{% else %}{{ '<｜hy_Assistant｜>' + m['content'] + '<｜hy_place▁holder▁no▁2｜>' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<｜hy_Assistant｜>' }}{% endif %}"
)
# Gemma 3: no system role; the system prompt opens the first user turn. The assistant is "model".
GEMMA3 = (
    "{{ bos_token }}{% set sys = '' %}{% if messages[0]['role'] == 'system' %}"
    "{% set sys = messages[0]['content'] + '\n\n' %}{% set messages = messages[1:] %}{% endif %}"
    "{% for m in messages %}{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (sys if loop.first else '') + m['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
PHI3 = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + '<|end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)
# Mistral (v0.3 style): no system role, the system prompt goes before the last user message; no generation prompt.
MISTRAL = (
    "{{ bos_token }}{% set sys = '' %}{% if messages[0]['role'] == 'system' %}"
    "{% set sys = messages[0]['content'] + '\n\n' %}{% set messages = messages[1:] %}{% endif %}"
    "{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + (sys if loop.last or loop.revindex == 2 else '')"
    " + m['content'] + '[/INST]' }}{% else %}{{ ' ' + m['content'] + eos_token }}{% endif %}{% endfor %}"
)


@dataclass(frozen=True)
class Family:
    name: str  # the config's model_type
    template: str
    eos: str
    specials: tuple[str, ...]  # the tokens the template uses, besides eos / pad / bos
    pad: str | None = None  # None: the tokenizer has no pad token (Llama 3): the project must pick one
    bos: str | None = None  # the tokenizer adds it itself (a post-processor), as the real one does
    stop: tuple[str, ...] = ()  # more end-of-turn tokens in generation_config.eos_token_id
    config: dict = field(default_factory=dict)  # family-specific config values
    fast_step: bool = False  # chat/fast_step.py's decoding step applies


FAMILIES = {f.name: f for f in [
    Family("qwen2", CHATML, "<|im_end|>", ("<|im_start|>",), pad="<|endoftext|>", stop=("<|endoftext|>",),
           config=dict(tie_word_embeddings=True), fast_step=True),
    Family("qwen3", QWEN3, "<|im_end|>", ("<|im_start|>", "<think>", "</think>"), pad="<|endoftext|>",
           config=dict(tie_word_embeddings=True, head_dim=16)),
    Family("llama", LLAMA3, "<|eot_id|>", ("<|start_header_id|>", "<|end_header_id|>"), bos="<|begin_of_text|>",
           stop=("<|end_of_text|>",), config=dict(tie_word_embeddings=True), fast_step=True),
    Family("glm4", GLM4, "<|user|>", ("[gMASK]", "<sop>", "<|system|>", "<|assistant|>", "<|observation|>"),
           pad="<|endoftext|>", stop=("<|endoftext|>", "<|observation|>"), config=dict(head_dim=16)),
    Family("internlm3", INTERNLM3, "<|im_end|>", ("<|im_start|>",), pad="<unk>", bos="<s>",
           config=dict(head_dim=16, qkv_bias=False, bias=False)),
    Family("ernie4_5", ERNIE45, "<|end_of_sentence|>", ("<|begin_of_sentence|>",), pad="<unk>",
           config=dict(head_dim=16, tie_word_embeddings=True)),
    Family("hunyuan_v1_dense", HUNYUAN, "<｜hy_place▁holder▁no▁2｜>",
           ("<｜hy_begin▁of▁sentence｜>", "<｜hy_place▁holder▁no▁3｜>", "<｜hy_User｜>", "<｜hy_Assistant｜>"),
           pad="<｜hy_▁pad▁｜>", config=dict(head_dim=16, use_qk_norm=True, tie_word_embeddings=True)),
    # A sliding window shorter than the test conversations, so that packing and padding meet it.
    Family("gemma3_text", GEMMA3, "<eos>", ("<start_of_turn>",), pad="<pad>", bos="<bos>", stop=("<end_of_turn>",),
           config=dict(head_dim=16, sliding_window=24, layer_types=["sliding_attention", "full_attention"],
                       query_pre_attn_scalar=16)),
    Family("phi3", PHI3, "<|endoftext|>", ("<|system|>", "<|user|>", "<|assistant|>"), pad="<|endoftext|>",
           stop=("<|end|>", "<|assistant|>")),
    Family("mistral", MISTRAL, "</s>", ("[INST]", "[/INST]"), bos="<s>", config=dict(head_dim=16, sliding_window=None),
           fast_step=True),
]}
# Hunyuan's <｜hy_▁pad▁｜> etc. and Phi-3's <|end|> are special tokens too: listed by what the template names.
_EXTRA_SPECIALS = {"phi3": ("<|end|>",), "ernie4_5": ("<unk>",), "internlm3": ("<unk>",)}

SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=512)


def family_tokenizer(family: Family, texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [t for t in (family.pad, family.bos, family.eos, *family.stop, *family.specials,
                            *_EXTRA_SPECIALS.get(family.name, ())) if t]
    specials = list(dict.fromkeys(specials))
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(texts, trainer=trainer)
    if family.bos:  # as Llama 3's, Gemma's, Mistral's tokenizers: text -> BOS + text unless told otherwise
        bos_id = core.token_to_id(family.bos)
        core.post_processor = processors.TemplateProcessing(single=f"{family.bos} $A", special_tokens=[
            (family.bos, bos_id)])
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token=family.eos, pad_token=family.pad,
                                   bos_token=family.bos, additional_special_tokens=specials,
                                   chat_template=family.template, model_max_length=512)


def family_model(family: Family, tokenizer, seed: int = 11):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    ids = tokenizer.convert_tokens_to_ids
    eos = [ids(family.eos)] + [ids(t) for t in family.stop]
    config = AutoConfig.for_model(
        family.name, vocab_size=len(tokenizer), **SHAPE, **family.config, bos_token_id=ids(family.bos) if family.bos
        else None, eos_token_id=eos if len(eos) > 1 else eos[0], pad_token_id=ids(family.pad or family.eos))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():  # larger weights than the default init: answers then vary with the prompt and adapter
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.2)
    model.generation_config.eos_token_id = eos if len(eos) > 1 else eos[0]
    model.generation_config.do_sample = False
    return model


def build_family_model(name: str, out_dir: Path) -> Path:
    """The family's tiny model and tokenizer, saved as a local model directory."""
    from finetune.demo_model import sample_texts

    family = FAMILIES[name]
    if (out_dir / "config.json").exists():
        return out_dir
    tokenizer = family_tokenizer(family, sample_texts() + ["system", "user", "assistant", "User:", "Assistant:"])
    model = family_model(family, tokenizer)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
