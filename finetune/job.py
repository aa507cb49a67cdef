"""The job process: `python -m finetune.job <job_dir> [--resume]`, started by finetune.jobs.start_job."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("job_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the job dir")
    args = parser.parse_args(argv)
    from finetune.train import run

    return run(args.job_dir, resume=args.resume, evaluator_factory=evaluator_factory)


def evaluator_factory(cfg):
    """Task metrics during training come from the composition layer above finetune/ and evaluation/ (recipes/),
    imported only by a run that names validation sets."""
    from recipes.train_eval import build_evaluator

    return build_evaluator(cfg)


if __name__ == "__main__":
    sys.exit(main())
