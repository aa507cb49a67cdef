"""Model references, hubs and the catalog of known models (no gradio)."""
