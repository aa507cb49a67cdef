"""One decoding step of a Llama-family model (Llama, Qwen2, Mistral) without transformers' per-step plumbing.

After the prompt, every step of `generate` (or of chat/decode.py's loop) goes through the model's whole forward:
output dataclasses, mask construction, the attention-function registry, cache objects, decorators. On small models
and on the CPU that costs more than the arithmetic (bench/bench_chat.py). This step calls the model's own modules
(embedding, norms, projections, MLP, rotary embedding, lm_head) in the order its forward does, with the same tensor
operations for attention, and keeps the keys and values in buffers allocated once per request. The projections are
the modules' own forwards, so chat/batched_lora.py's per-row adapters apply here as they do in the full forward;
bare linear layers take chat/row_matmul.py's product, which on some CPUs is faster for a few rows in another layout
(and then differs from the forward in the last bits).

Only the single-token decoding step is done here; the prompt goes through the model's forward. Models that are
not plain Llama-family decoders with SDPA attention (sliding windows, other attention implementations, other
architectures) are refused by `FastStep.supported`, and chat/decode.py then uses the full forward.
tests/test_chat_fast_step.py checks the logits (bit for bit with that layout off) and the answers against the full
forward.
"""

from __future__ import annotations

import sys

import torch

from models.local import row_matmul

# Decoder layers: norm, attention with rotary, residual, norm, gated MLP, residual. Mistral's layers are Llama's,
# with a sliding window when its config sets one (then refused below).
_ARCHITECTURES = {"llama", "qwen2", "mistral"}


def _causal_lm(model):
    """The transformers model under a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _direct(module):
    """`module.forward` itself when no hook would run around it (skips nn.Module.__call__), else the module. Read
    once per request, so chat/batched_lora.py's per-request forwards are the ones taken. A bare nn.Linear becomes
    chat/row_matmul.py's product (F.linear, or a faster layout for a few rows on the CPU)."""
    if row_matmul.hooked(module):
        return module
    return row_matmul.bare_linear(module) or module.forward


class _Layer:
    """One decoder layer's callables, resolved once per request."""

    def __init__(self, layer):
        attn, mlp = layer.self_attn, layer.mlp
        self.attn = attn
        self.norm_in, self.norm_post = _direct(layer.input_layernorm), _direct(layer.post_attention_layernorm)
        self.q, self.k, self.v, self.o = (_direct(m) for m in (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj))
        self.gate, self.up, self.down, self.act = (_direct(m) for m in (mlp.gate_proj, mlp.up_proj, mlp.down_proj,
                                                                       mlp.act_fn))
        self.rotary = sys.modules[type(attn).__module__].apply_rotary_pos_emb  # the model's own


class FastStep:
    @staticmethod
    def supported(model) -> bool:
        return FastStep.unsupported_reason(model) is None

    @staticmethod
    def unsupported_reason(model) -> str | None:
        """Why this step cannot decode `model` (None: it can). Shown in the model list, so that a user of Qwen3 or
        Gemma knows their answers take the full forward (correct, slower) rather than guessing."""
        lm = _causal_lm(model)
        config = getattr(lm, "config", None)
        kind = getattr(config, "model_type", None)
        if kind not in _ARCHITECTURES:
            return (f"the decoding step is written for {', '.join(sorted(_ARCHITECTURES))} layers; this model is "
                    f"{kind or 'of unknown type'}")
        if lm.training:
            return "the model is in training mode"
        if getattr(config, "_attn_implementation", None) != "sdpa":
            return f"attention implementation {config._attn_implementation!r} (the step reproduces sdpa only)"
        if getattr(config, "pretraining_tp", 1) != 1:
            return "pretraining_tp > 1 (split projections)"
        if any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or ["full_attention"]):
            return "sliding-window attention layers"
        if kind == "mistral" and getattr(config, "sliding_window", None) is not None:
            return f"sliding-window attention (sliding_window={config.sliding_window})"
        inner = getattr(lm, "model", None)
        needed = ("embed_tokens", "layers", "norm", "rotary_emb")
        if inner is None or not all(hasattr(inner, n) for n in needed) or not hasattr(lm, "lm_head"):
            return "the model's modules are not laid out as in transformers' Llama"
        if len(inner.layers) != config.num_hidden_layers:
            return "the layer count differs from the config"
        return None

    def __init__(self, model, cache, attention_mask: torch.Tensor, max_new_tokens: int):
        """`cache`: the DynamicCache filled by the prompt's forward; `attention_mask`: the prompt's [batch, length]
        mask (left padding). Room is made for `max_new_tokens` more positions."""
        lm = _causal_lm(model)
        self.layers = [_Layer(layer) for layer in lm.model.layers]
        self.embed, self.rotary_emb = _direct(lm.model.embed_tokens), _direct(lm.model.rotary_emb)
        self.norm, self.lm_head = _direct(lm.model.norm), _direct(lm.lm_head)
        batch, prompt_len = attention_mask.shape
        self.length = prompt_len
        self.keys, self.values = [], []
        for layer_cache in cache.layers:
            k, v = layer_cache.keys, layer_cache.values  # [batch, kv heads, prompt_len, head dim]
            kb = k.new_empty(batch, k.shape[1], prompt_len + max_new_tokens, k.shape[3])
            vb = v.new_empty(batch, v.shape[1], prompt_len + max_new_tokens, v.shape[3])
            kb[:, :, :prompt_len] = k
            vb[:, :, :prompt_len] = v
            self.keys.append(kb)
            self.values.append(vb)
        # As transformers' sdpa_mask: no mask at all when no row is padded (new positions are never padded), else
        # a boolean [batch, 1, 1, length] mask that grows by one attended position per step.
        self.padded = not bool(attention_mask.all())
        mask = torch.ones(batch, 1, 1, prompt_len + max_new_tokens, dtype=torch.bool, device=attention_mask.device)
        mask[:, 0, 0, :prompt_len] = attention_mask.bool()
        self.mask = mask

    @torch.inference_mode()
    def __call__(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """tokens [batch] at positions [batch, 1] -> the next-token logits [batch, vocab]."""
        t = self.length
        self.length += 1
        hidden = self.embed(tokens[:, None])
        cos, sin = self.rotary_emb(hidden, positions)
        mask = self.mask[:, :, :, : t + 1] if self.padded else None
        for i, layer in enumerate(self.layers):
            hidden = hidden + self._attention(i, layer, layer.norm_in(hidden), cos, sin, mask)
            x = layer.norm_post(hidden)
            hidden = hidden + layer.down(layer.act(layer.gate(x)) * layer.up(x))  # the MLP's forward
        return self.lm_head(self.norm(hidden))[:, -1]

    def _attention(self, i: int, layer: _Layer, x: torch.Tensor, cos, sin, mask) -> torch.Tensor:
        """Qwen2Attention / LlamaAttention.forward for one new token, with transformers' sdpa_attention_forward."""
        attn = layer.attn
        batch, d = x.shape[0], attn.head_dim
        q = layer.q(x).view(batch, 1, -1, d).transpose(1, 2)
        k = layer.k(x).view(batch, 1, -1, d).transpose(1, 2)
        v = layer.v(x).view(batch, 1, -1, d).transpose(1, 2)
        q, k = layer.rotary(q, k, cos, sin)
        t = self.length - 1
        self.keys[i][:, :, t] = k[:, :, 0]
        self.values[i][:, :, t] = v[:, :, 0]
        keys, values = self.keys[i][:, :, : t + 1], self.values[i][:, :, : t + 1]
        groups = getattr(attn, "num_key_value_groups", 1)
        kwargs = {}
        if groups > 1 and mask is None and d <= 256:
            kwargs["enable_gqa"] = True  # as use_gqa_in_sdpa
        elif groups > 1:
            q = q.reshape(batch, q.shape[1] // groups, groups, d)  # pack_gqa: one query token per kv head group
        out = torch.nn.functional.scaled_dot_product_attention(q, keys, values, attn_mask=mask, dropout_p=0.0,
                                                               scale=attn.scaling, is_causal=False, **kwargs)
        out = out.reshape(batch, -1, 1, values.shape[-1]).transpose(1, 2).contiguous()
        return layer.o(out.reshape(batch, 1, -1).contiguous())
