"""`python -m finetune compare RUN RUN ...`: finished runs side by side on the metrics they were selected by.

A run is a dict: {"name", "metrics": rows of {"step", metric: value}, "config", "best"}. The command (jobs/cli.py)
reads a job directory or a job id through the job system (jobs/progress.compare_run) and an adapter directory here
(load_run): the files finetune wrote into it. The table has one row per run (learning rate, rank, steps, the selected
step and every task metric there, the last value, the share of time spent evaluating); the chart has one line per
run, metric by step, printed as text or written as PNG.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a damaged line: the others still make a curve
    return rows


WIDTH, HEIGHT = 60, 14  # the text chart, in characters


def load_run(path: Path) -> dict:
    """An adapter directory as a run: the metrics.jsonl, train_config.yaml and selection.json saved with it."""
    metrics = read_jsonl(path / "metrics.jsonl")
    if not metrics:
        raise FileNotFoundError(f"{path}: no metrics.jsonl (give a job directory, a job id or an adapter directory)")
    config = {}
    if (path / "train_config.yaml").is_file():
        import yaml

        config = yaml.safe_load((path / "train_config.yaml").read_text(encoding="utf-8")) or {}
    best = {}
    if (path / "selection.json").is_file():
        best = json.loads((path / "selection.json").read_text(encoding="utf-8"))
    return {"name": path.name, "metrics": metrics, "config": config, "best": best}


def task_metrics(runs: list[dict]) -> list[str]:
    """Every metric:set key any run logged (task metrics, then eval_loss), in first-seen order."""
    keys: dict[str, None] = {}
    for run in runs:
        for row in run["metrics"]:
            keys.update((k, None) for k in row if ":" in k)
    return list(keys) + (["eval_loss"] if any("eval_loss" in r for run in runs for r in run["metrics"]) else [])


def table(runs: list[dict], metric: str) -> list[dict]:
    rows = []
    for run in runs:
        points = [(r["step"], r[metric]) for r in run["metrics"] if metric in r]
        lower = metric == "eval_loss"
        top = (None, None)
        if points:  # the first step at the best value
            top = min(points, key=lambda p: (p[1], p[0])) if lower else max(points, key=lambda p: (p[1], -p[0]))
        cfg, best = run["config"], run["best"]
        rows.append({"run": run["name"], "lr": cfg.get("learning_rate"), "rank": cfg.get("lora_rank"),
                     "steps": max((r["step"] for r in run["metrics"]), default=0),
                     "selected_step": best.get("step"), "select_by": best.get("select_by"),
                     f"best {metric}": top[1], "at_step": top[0], f"last {metric}": points[-1][1] if points else None,
                     "eval_share": best.get("eval_share")})
    return rows


def text_chart(runs: list[dict], metric: str) -> str:
    """One mark per run (1, 2, ...) at each evaluated step; the legend maps marks to runs."""
    series = [[(r["step"], r[metric]) for r in run["metrics"] if metric in r] for run in runs]
    points = [p for s in series for p in s]
    if not points:
        return f"(no {metric} points)"
    max_step = max(s for s, _ in points) or 1
    low, high = min(v for _, v in points), max(v for _, v in points)
    grid = [[" "] * WIDTH for _ in range(HEIGHT)]
    for mark, line in enumerate(series, 1):
        for step, value in line:
            x = round(step / max_step * (WIDTH - 1))
            y = HEIGHT - 1 - round((value - low) / ((high - low) or 1) * (HEIGHT - 1))
            grid[y][x] = str(mark % 10)
    lines = [f"{metric} by step ({low:.4g} .. {high:.4g}; steps 0 .. {max_step})"]
    lines += ["|" + "".join(row) for row in grid] + ["+" + "-" * WIDTH]
    return "\n".join(lines + [f"{i % 10}: {run['name']}" for i, run in enumerate(runs, 1)])


def png_chart(runs: list[dict], metric: str, out: Path) -> Path:
    """The same chart as a PNG, drawn with Pillow (no plotting library needed)."""
    from PIL import Image, ImageDraw

    width, height, pad = 720, 400, 40
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    series = [[(r["step"], r[metric]) for r in run["metrics"] if metric in r] for run in runs]
    points = [p for s in series for p in s] or [(0, 0.0)]
    max_step = max(s for s, _ in points) or 1
    low, high = min(v for _, v in points), max(v for _, v in points)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([pad, pad, width - pad, height - pad], outline="black")

    def xy(step, value):
        return (pad + step / max_step * (width - 2 * pad),
                height - pad - (value - low) / ((high - low) or 1) * (height - 2 * pad))

    for i, (run, line) in enumerate(zip(runs, series)):
        colour = colours[i % len(colours)]
        if len(line) > 1:
            draw.line([xy(s, v) for s, v in line], fill=colour, width=2)
        draw.text((pad + 5, 5 + 12 * i), f"{run['name']}", fill=colour)
    draw.text((width - pad - 200, height - pad + 10), f"{metric}: {low:.4g}..{high:.4g}, step 0..{max_step}",
              fill="black")
    image.save(out)
    return out
