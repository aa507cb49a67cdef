"""A tiny chat model that always answers "B", for exact accuracy checks of the evaluation runs.

Its attention and MLP outputs are zero, so each position's hidden state is its own token's embedding: the model is
a bigram table we write by hand. Every token is followed by "B", and "B" by <|im_end|>. So the likelihood method
picks B after any prompt, and generation answers exactly "B" (then stops): accuracy must equal the share of "B" keys.
"""

from __future__ import annotations

from pathlib import Path


def build_always_b_model(out_dir: Path) -> Path:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from chat_fixtures import TEXTS
    from finetune.demo_model import DemoRecipe, train_tokenizer

    recipe = DemoRecipe(vocab_size=400, hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2,
                        num_kv_heads=1, max_positions=1024, seed=3)
    tokenizer = train_tokenizer(TEXTS, recipe)
    b_id = tokenizer.encode("B", add_special_tokens=False)
    assert len(b_id) == 1, b_id
    b_id, end_id = b_id[0], tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=recipe.hidden_size,
                         intermediate_size=recipe.intermediate_size, num_hidden_layers=recipe.num_layers,
                         num_attention_heads=recipe.num_heads, num_key_value_heads=recipe.num_kv_heads,
                         max_position_embeddings=recipe.max_positions, tie_word_embeddings=False,
                         bos_token_id=None, eos_token_id=end_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(recipe.seed)
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:  # residual stream = the token's embedding
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = model.model.embed_tokens.weight
        embed.zero_()
        embed[:, 1] = 1.0  # every token but B points along dimension 1 ...
        embed[b_id, 1], embed[b_id, 0] = 0.0, 1.0  # ... B along dimension 0
        head = model.lm_head.weight
        head.zero_()
        head[b_id, 1] = 10.0  # after any other token: B
        head[end_id, 0] = 10.0  # after B: end of turn
    model.generation_config.do_sample = False
    model.generation_config.eos_token_id = end_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def hold_first_run_after_two_items(monkeypatch) -> None:
    """The first evaluation run waits after two items until it is cancelled (then later runs go through): a cancel
    test with no race against the run's end."""
    from jobs.runners import EvalProgress

    report, held = EvalProgress.__call__, []

    def hold_once(self, p):
        report(self, p)
        if p.done >= 2 and not held:
            held.append(p.done)
            self.control.stop.wait(30)

    monkeypatch.setattr(EvalProgress, "__call__", hold_once)
