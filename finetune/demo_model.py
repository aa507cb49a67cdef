"""Moved to models/ (the ground floor every package imports): the demo model in models/demo.py, references and
hubs in models/refs.py, templates in models/templates.py. These names stay importable from here because finetune/,
hosting/ and the test fixtures use them in many places."""

from models.demo import (DATA_DIR, DEMO_MODEL_NAME, RECIPE_VERSION, SPECIAL_TOKENS, DemoRecipe,  # noqa: F401
                         build_demo_model, cache_root, demo_model_cached,  # noqa: F401
                         demo_model_dir, init_model, pretrain, sample_conversations,
                         sample_texts, train_tokenizer)
from models.refs import resolve_model  # noqa: F401
from models.templates import CHATML_TEMPLATE, DEFAULT_SYSTEM  # noqa: F401
