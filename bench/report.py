"""What every benchmark does last: print its result lines as JSON, and append them to --json-out when given."""

from __future__ import annotations

import json
from pathlib import Path


def emit_json(lines: list[dict], json_out: Path | None) -> None:
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    print(text, end="")
    if json_out:
        with Path(json_out).open("a", encoding="utf-8") as f:
            f.write(text)
