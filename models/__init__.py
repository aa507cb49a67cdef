"""The ground floor: every model, wherever it runs, and what describes one.

- refs.py, demo.py: model references and hubs (Hugging Face, its HF_ENDPOINT mirror, ModelScope, local
  directories, the built-in demo model);
- templates.py: chat templates and the default system prompt; settings.py: GenerationSettings;
- interface.py: `ChatModel`, the one interface Chat and Evaluate use (stream, generate, score options);
- catalog.py: the curated models people fine-tune, with sizes computed from their config numbers;
- preflight.py: checks a model's config and tokenizer files before loading (architecture, remote code, size, template);
- local/: the in-process implementation (one shared base + LoRA adapters, the fast decoding path);
- remote/: the OpenAI-compatible client and endpoints (vLLM, SGLang, LMDeploy, transformers serve, hosted APIs).

Nothing here imports chat/, evaluation/, finetune/, hosting/ or ui/ (tests/test_layering.py checks it).
"""
