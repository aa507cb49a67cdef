"""`x @ W^T + b` for a handful of rows (one new token per pane), in whichever layout is faster on this CPU.

Decoding several panes at once multiplies a few rows by every weight matrix. On this project's 2-core AMD EPYC
machine, MKL's sgemm is slow for 2-16 rows, while the same product taken as `W @ x^T` runs at single-row speed:
[4, 896] x [896, 4864] takes 5.8 ms as `F.linear` and 1.3 ms as `W @ x^T`; the Qwen2.5-0.5B lm_head ([4, 896] x
[896, 151936]) 218 ms against 39 ms. Other CPUs may differ, so each (weight shape, rows) is timed once per process
on the machine itself and the faster layout kept. GPUs, one row (where both layouts give the same numbers) and
longer inputs (the prompt) always take `F.linear`.

The two layouts add the products in different orders, so results differ in the last bits, as batched and
single-row products already do; tests/test_chat_fast_step.py checks the greedy answers stay the same.
"""

from __future__ import annotations

import threading
import time

import torch
import torch.nn.functional as F

FEW_ROWS = 16
enabled = True  # tests switch it off to compare the decoding step with the model's forward bit for bit
_faster: dict[tuple, bool] = {}  # (out, in, rows, dtype) -> W @ x^T is faster
_lock = threading.Lock()


def _best_ms(run, repeats: int = 2) -> float:
    run()  # warm-up: first calls allocate and pick kernels
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def transposed_is_faster(weight: torch.Tensor, rows: int) -> bool:
    key = (*weight.shape, rows, weight.dtype)
    with _lock:
        if key not in _faster:
            x = torch.randn(rows, weight.shape[1], dtype=weight.dtype)
            with torch.inference_mode():
                plain = _best_ms(lambda: F.linear(x, weight))
                transposed = _best_ms(lambda: torch.mm(weight, x.t()).t().contiguous())
            _faster[key] = transposed < 0.8 * plain  # a clear win only: timings on a shared machine are noisy
        return _faster[key]


def hooked(module) -> bool:
    """Some forward hook (the module's own, or a global one) would run around `module`'s forward."""
    from torch.nn.modules import module as nn_module

    return any((module._forward_hooks, module._forward_pre_hooks, nn_module._global_forward_hooks,
                nn_module._global_forward_pre_hooks))


def bare_linear(module):
    """`module`'s forward as one call of `linear` when it is a bare nn.Linear with no hook to run around it (the
    same product, without nn.Module.__call__); None for anything else."""
    if type(module) is not torch.nn.Linear or hooked(module):
        return None
    weight, bias = module.weight, module.bias
    return lambda x, *args, **kwargs: linear(x, weight, bias)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """What `F.linear(x, weight, bias)` computes."""
    rows = x.numel() // x.shape[-1]
    if (not enabled or weight.device.type != "cpu" or not 1 < rows <= FEW_ROWS or torch.is_grad_enabled()
            or not transposed_is_faster(weight, rows)):
        return F.linear(x, weight, bias)
    out = torch.mm(weight, x.reshape(rows, x.shape[-1]).t()).t().contiguous()
    if bias is not None:
        out += bias
    return out.reshape(*x.shape[:-1], weight.shape[0])
