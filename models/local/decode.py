"""A lean greedy decoding loop for the registry: the forward calls of transformers' `generate`, without its per-step
machinery.

Same calls as `generate` at greedy: the prompt once with positions counted from the attention mask (left padding),
then one token per step with a DynamicCache, the scores of the last position only, a finished row fed the pad token.
On small models (and on the CPU) generate's per-step bookkeeping costs about as much as the model itself
(bench/bench_chat.py). Only greedy decoding with the knobs chat sets (repetition penalty, min_new_tokens) takes
this path; sampling, and a model whose generation config asks for anything else, keep `generate`
(tests/test_chat_registry.py checks the answers against plain `generate` token for token).
"""

from __future__ import annotations

import threading

# Generation-config fields that add a logits processor or stopping rule this loop does not implement.
_UNSUPPORTED = ("no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids", "suppress_tokens",
                "begin_suppress_tokens", "forced_bos_token_id", "forced_eos_token_id", "sequence_bias",
                "exponential_decay_length_penalty", "renormalize_logits", "stop_strings", "max_time",
                "min_length", "epsilon_cutoff", "eta_cutoff", "watermarking_config", "guidance_scale",
                "cache_implementation")


def lean_decode_supported(generation_config, settings) -> bool:
    if not settings.greedy:
        return False
    return not any(getattr(generation_config, name, None) for name in _UNSUPPORTED)


def greedy_decode(model, input_ids, attention_mask, settings, eos_ids: set[int], pad_token_id: int, streamer,
                  stop: threading.Event, fast_step: bool = True) -> None:
    """Greedy answers for a left-padded batch, handed to `streamer` step by step as `generate` would.

    With `fast_step` (and a model models/local/fast_step.py supports), the steps after the prompt skip the model's full
    forward."""
    import torch
    from transformers import DynamicCache
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

    from models.local.fast_step import FastStep

    device = input_ids.device
    penalty = (RepetitionPenaltyLogitsProcessor(settings.repetition_penalty)
               if settings.repetition_penalty != 1.0 else None)
    eos = torch.tensor(sorted(eos_ids), device=device)
    pad = torch.tensor(pad_token_id, device=device)
    positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    unfinished = torch.ones(input_ids.shape[0], dtype=torch.bool, device=device)
    cache, sequences, step_ids = DynamicCache(config=model.config), input_ids, input_ids
    fast = None
    streamer.put(input_ids.cpu())
    with torch.inference_mode():
        for step in range(settings.max_new_tokens):
            if fast is not None:
                logits = fast(step_ids[:, 0], positions)
            else:
                logits = model(input_ids=step_ids, attention_mask=attention_mask, position_ids=positions,
                               past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
                if step == 0 and fast_step and FastStep.supported(model):
                    fast = FastStep(model, cache, attention_mask, settings.max_new_tokens)
                    cache = None
            scores = logits.to(dtype=torch.float32, copy=True)
            if penalty is not None:
                scores = penalty(sequences, scores)
            if step < settings.min_new_tokens:  # as MinNewTokensLengthLogitsProcessor
                scores[:, eos] = -float("inf")
            next_tokens = torch.where(unfinished, scores.argmax(-1), pad)
            if penalty is not None:  # the only reader of the whole sequence
                sequences = torch.cat([sequences, next_tokens[:, None]], dim=-1)
            streamer.put(next_tokens.cpu())
            unfinished &= ~torch.isin(next_tokens, eos)
            if stop.is_set() or not unfinished.any():
                break
            step_ids = next_tokens[:, None]
            if fast is None:
                attention_mask = torch.cat([attention_mask, attention_mask.new_ones((attention_mask.shape[0], 1))], -1)
            positions = positions[:, -1:] + 1
