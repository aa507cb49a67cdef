"""Start the app: `python app.py [--model M] [--host H] [--port P]`. Launch only; the UI lives under ui/."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ui.context import AppContext
from ui.layout import build_app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Medical model workbench (Gradio app)")
    parser.add_argument("--model", default=os.environ.get("MEDTUNE_MODEL", "demo"),
                        help='base model: hub id, local directory, or "demo" (default; env MEDTUNE_MODEL)')
    parser.add_argument("--host", default=os.environ.get("MEDTUNE_HOST", "127.0.0.1"), help="env MEDTUNE_HOST")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MEDTUNE_PORT", "7860")), help="env MEDTUNE_PORT")
    parser.add_argument("--data-dir", default=os.environ.get("MEDTUNE_DATA_DIR"),
                        help="where jobs, runs and reports are kept (env MEDTUNE_DATA_DIR; default ./runs)")
    parser.add_argument("--lang", choices=["en", "zh"], default=os.environ.get("MEDTUNE_LANG", "en"))
    return parser.parse_args(argv)


def prepare_demo_model() -> None:
    """Build the demo model before serving, so the first user does not wait for it inside a request."""
    from finetune.demo_model import cache_root, demo_model_dir

    print(f"Preparing the built-in demo model (built once, about a minute on a CPU; cached under {cache_root()})...",
          flush=True)
    print(f"Demo model ready: {demo_model_dir()}", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    extra = {"data_dir": Path(args.data_dir)} if args.data_dir else {}  # else AppContext's default (env or ./runs)
    ctx = AppContext(model=args.model, lang=args.lang, **extra)
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    if ctx.is_demo_model:
        prepare_demo_model()
    build_app(ctx).queue().launch(server_name=args.host, server_port=args.port, show_error=True)


if __name__ == "__main__":
    main()
