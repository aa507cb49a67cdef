"""The built-in demo model: built offline from the project's own data, deterministically, atomically."""

import dataclasses

from finetune.demo_model import DemoRecipe, build_demo_model, resolve_model

QUICK = dataclasses.replace(DemoRecipe(), train_steps=3)


def test_same_recipe_builds_bit_identical_weights(tmp_path):
    first = build_demo_model(tmp_path / "a", QUICK)
    second = build_demo_model(tmp_path / "b", QUICK)
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
    assert (first / "tokenizer.json").read_bytes() == (second / "tokenizer.json").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temp directory left behind


def test_built_model_chats_with_chatml(demo_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo_model)
    model = AutoModelForCausalLM.from_pretrained(demo_model)
    messages = [{"role": "user", "content": "高血压患者饮食要注意什么？"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\n高血压患者饮食要注意什么？<|im_end|>\n<|im_start|>assistant\n"
    batch = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    output = model.generate(**batch, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(output[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    assert answer.strip()  # it answers; what it says is meaningless (a demo), but it is medical-looking Chinese
    assert resolve_model("demo") == str(demo_model) and resolve_model("Qwen/Qwen2.5-0.5B-Instruct").startswith("Qwen")
