"""Models behind OpenAI-compatible endpoints: client.py (httpx, streaming, retries), endpoints.py (flags and
endpoints.yaml), model.py (RemoteModel, a ChatModel)."""
