"""Moved to models/local/ (catalog.py, host.py, generator.py, put together in registry.py); kept importable from
here for the UI, the job runner and the benchmarks."""

from models.local.registry import (ModelInfo, ModelRegistry, RegistryError, Unload, human_bytes,  # noqa: F401
                                   pick_device_dtype, shared_registry)
