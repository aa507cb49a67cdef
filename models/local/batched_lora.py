"""Several LoRA adapters in one batch, one adapter (or none) per row, with two batched matmuls per layer.

peft's `adapter_names=[...]` does the same job, but on every layer and every decoding step it loops over the
adapters, gathers each one's rows with fancy indexing and scatters the result back; on small models (and on
the CPU) that bookkeeping costs as much as the model itself. Here each row's A and B matrices are gathered once
per request into [rows, in, r] and [rows, r, out] stacks (zeros for rows that use the base), so a step costs
`base(x) + (x @ A_rows) @ B_rows * scaling_rows`: the same products, in the same order, as the adapter alone
(tests/test_chat_registry.py checks the answers token for token). A power-of-two scaling (alpha = 2r, r, ...) is
folded into B, which gives the same numbers with one operation fewer.

Only vanilla LoRA on Linear layers qualifies; anything else (DoRA, other variants, embeddings, quantised layers)
makes `batched_lora` return None and the caller falls back to peft's own mixed batch.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch

from models.local import row_matmul


def _lora_linears(model) -> list:
    from peft.tuners.lora.layer import LoraLayer

    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def _supported(module, adapters: set[str]) -> bool:
    from peft.tuners.lora.layer import Linear

    if type(module) is not Linear or not isinstance(module.base_layer, torch.nn.Linear):
        return False
    if module.merged or getattr(module, "lora_embedding_A", {}):
        return False
    return not any(a in module.lora_variant or module.use_dora.get(a, False) for a in adapters)


def _stacks(module, rows: Sequence[str | None], device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Per-row A^T [rows, in, r], B^T [rows, r, out] and scaling [rows, 1, 1]; None if no row uses this layer."""
    present = [a for a in rows if a is not None and a in module.lora_A]
    if not present:
        return None
    r = max(module.lora_A[a].weight.shape[0] for a in present)
    base = module.base_layer
    dtype = module.lora_A[present[0]].weight.dtype
    a_t = torch.zeros(len(rows), base.in_features, r, dtype=dtype, device=device)
    b_t = torch.zeros(len(rows), r, base.out_features, dtype=dtype, device=device)
    scale = torch.zeros(len(rows), 1, 1, dtype=dtype, device=device)
    for i, name in enumerate(rows):
        if name is None or name not in module.lora_A:
            continue  # the base, or an adapter that does not touch this layer: a zero delta, exactly
        a_w, b_w = module.lora_A[name].weight, module.lora_B[name].weight
        a_t[i, :, : a_w.shape[0]] = a_w.t()
        b_t[i, : b_w.shape[1], :] = b_w.t()
        scale[i] = module.scaling[name]
    return a_t, b_t, scale


@contextmanager
def batched_lora(peft_model, rows: Sequence[str | None]) -> Iterator[bool]:
    """Within the block, `peft_model` answers row i with adapter rows[i] (None: the base). Yields False (and
    changes nothing) when some layer is not plain LoRA; the caller then uses peft's `adapter_names` instead.

    Each LoRA layer's forward is swapped for `base(x) + (x @ A_rows) @ B_rows * scaling_rows` for the duration:
    cheaper than peft's own forward plus a hook (no argument checks, no adapter loop, no hook slow path).
    """
    adapters = {a for a in rows if a is not None}
    modules = _lora_linears(peft_model)
    if not all(_supported(m, adapters) for m in modules):
        yield False
        return
    device = next(peft_model.parameters()).device
    swapped = []
    try:
        for module in modules:
            stacks = _stacks(module, rows, device)
            module.forward = _fast_forward(module.base_layer, stacks)  # instance attribute shadows the method
            swapped.append(module)
        yield True
    finally:
        for module in swapped:
            del module.forward


def _power_of_two(scale: torch.Tensor) -> bool:
    """Multiplying by a power of two only changes exponents, so (h @ B) * s == h @ (B * s) exactly."""
    return all(s == 0 or math.frexp(s)[0] == 0.5 for s in scale.flatten().tolist())


def _fast_forward(base_layer, stacks):
    linear = row_matmul.bare_linear(base_layer) or base_layer  # the same product, F.linear or a faster layout
    if stacks is None:  # no row uses this layer: the base layer alone, exactly
        # A function, not the module itself: assigning a Module would register a submodule, not shadow forward.
        return lambda x, *args, **kwargs: linear(x, *args, **kwargs)
    a_t, b_t, scale = stacks
    if _power_of_two(scale):
        b_t, scale = b_t * scale, None  # one multiply fewer per step, same numbers
    rows, width, dtype = a_t.shape[0], a_t.shape[1], a_t.dtype

    def forward(x, *args, **kwargs):
        result = linear(x, *args, **kwargs)
        if x.shape[0] != rows:
            raise RuntimeError(f"batched LoRA prepared for {rows} rows, got a batch of {x.shape[0]}")
        flat = x if x.dim() == 3 else x.reshape(rows, -1, width)
        delta = torch.bmm(torch.bmm(flat if flat.dtype == dtype else flat.to(dtype), a_t), b_t)
        if scale is not None:
            delta = delta * scale
        if delta.dtype == result.dtype and delta.shape == result.shape:
            return result.add_(delta)
        # A bf16/fp16 base with fp32 adapter weights (peft's default): peft adds the fp32 delta to the base output in
        # fp32 and rounds once; rounding the delta first differs by an ulp per layer, and answers drift from peft's.
        return (result + delta.reshape(result.shape)).to(result.dtype)

    return forward
