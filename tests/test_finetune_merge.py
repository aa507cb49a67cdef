"""`python -m finetune merge`: base + adapter -> a plain model that answers exactly as the adapter does."""

import pytest

from finetune.__main__ import main as finetune_main
from finetune.merge import MergeError, adapter_base_model, merge_adapter
from tests.chat_fixtures import build_adapter


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, tiny_chat_model):
    out = tmp_path_factory.mktemp("merge") / "adapter"
    build_adapter(tiny_chat_model, out, seed=3)
    (out / "train_config.yaml").write_text("model: tiny\n", encoding="utf-8")
    return out


def greedy_tokens(model, tokenizer, text: str) -> list[int]:
    import torch

    ids = tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return out[0, ids["input_ids"].shape[1]:].tolist()


def test_merged_model_answers_like_the_adapter(adapter, tiny_chat_model, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = merge_adapter(adapter, tmp_path / "merged", dtype="fp32")
    assert (out / "config.json").is_file() and (out / "train_config.yaml").is_file()
    assert not list(out.glob("adapter_*")), "a merged model is a plain transformers model"
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model)
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_chat_model), adapter).eval()
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_chat_model).eval()
    for text in ("高血压患者应", "感冒多由"):
        expected = greedy_tokens(peft, tokenizer, text)
        assert greedy_tokens(merged, tokenizer, text) == expected
    assert any(greedy_tokens(base, tokenizer, t) != greedy_tokens(merged, tokenizer, t) for t in ("高血压患者应", "感冒多由"))


def test_merge_refuses_an_existing_output_and_a_non_adapter(adapter, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(MergeError, match="already exists"):
        merge_adapter(adapter, tmp_path / "taken")
    with pytest.raises(MergeError, match="not an adapter directory"):
        adapter_base_model(tmp_path)


def test_merge_cli(adapter, tmp_path, capsys):
    assert finetune_main(["merge", "--adapter", str(adapter), "--out", str(tmp_path / "m"), "--dtype", "fp32"]) == 0
    assert "merged model saved to" in capsys.readouterr().out
    assert finetune_main(["merge", "--adapter", str(tmp_path), "--out", str(tmp_path / "m2")]) == 6  # an adapter
    assert "not an adapter directory" in capsys.readouterr().err
