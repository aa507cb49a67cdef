"""Decoding settings: the contract between the UI, the CLI, the Evaluate runs and the registry.

Greedy by default (temperature 0), so that answers are reproducible and comparable across panes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

MAX_NEW_TOKENS_LIMIT = 8192


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 means greedy decoding; top_p / top_k only apply when sampling
    top_p: float = 1.0
    top_k: int = 0  # 0 means no top-k filtering
    repetition_penalty: float = 1.0
    seed: int = 0  # seeds the sampler; irrelevant for greedy decoding
    min_new_tokens: int = 0  # benchmarks force fixed-length answers with this; users leave it at 0

    def __post_init__(self) -> None:
        checks = [
            ("max_new_tokens", 1 <= self.max_new_tokens <= MAX_NEW_TOKENS_LIMIT, f"between 1 and {MAX_NEW_TOKENS_LIMIT}"),
            ("temperature", 0.0 <= self.temperature <= 5.0, "between 0 and 5 (0 = greedy)"),
            ("top_p", 0.0 < self.top_p <= 1.0, "in (0, 1]"),
            ("top_k", self.top_k >= 0, "0 (off) or more"),
            ("repetition_penalty", 0.5 <= self.repetition_penalty <= 3.0, "between 0.5 and 3"),
            ("seed", 0 <= self.seed < 2**63, "a non-negative integer"),
            ("min_new_tokens", 0 <= self.min_new_tokens <= self.max_new_tokens, "between 0 and max_new_tokens"),
        ]
        for field_name, ok, expected in checks:
            if not ok:
                raise ValueError(f"{field_name} must be {expected}, got {getattr(self, field_name)!r}")

    @classmethod
    def from_values(cls, **values) -> "GenerationSettings":
        """Build from loosely typed values (UI sliders give floats, None for empty number boxes)."""
        defaults = cls()
        clean = {}
        for name, value in values.items():
            if value is None or value == "":
                continue
            kind = type(getattr(defaults, name))
            clean[name] = kind(round(value) if kind is int else value)
        return cls(**clean)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def generate_kwargs(self) -> dict:
        """Keyword arguments for `model.generate`, spelling out every knob so model defaults cannot leak in."""
        kwargs = dict(
            max_new_tokens=self.max_new_tokens,
            min_new_tokens=self.min_new_tokens or None,
            do_sample=not self.greedy,
            repetition_penalty=self.repetition_penalty,
            num_beams=1,
        )
        if not self.greedy:  # sampling knobs only when sampling: generate warns about them otherwise
            kwargs.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        return kwargs

    def to_dict(self) -> dict:
        return asdict(self)
