"""In-process models: the shared base and its LoRA adapters (registry.py puts catalog, host and generator
together), the fast decoding path (decode.py, fast_step.py, batched_lora.py, row_matmul.py) and streaming."""
