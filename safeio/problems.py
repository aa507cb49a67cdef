"""The one problem type: something wrong with a user's file (training data, an evaluation set, a reference,
predictions, the users file), said as data. `kind` is a short code ("bad_json", "missing_prediction", ...) and
`params` the values a sentence about it needs; `message` is the English sentence the command lines print. The app
renders `kind` + `params` in the page's language (ui/problems.py, wording in ui/strings.py under "problem.<kind>"),
falling back to the English message for a code it has no sentence for.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from typing import Any


@dataclass(frozen=True, eq=False)
class Problem:
    """One thing wrong with a file. `line` is 1-based (None for the file as a whole or a missing item); `id` the
    item's id when it has one; `field` the JSON path, column or setting at fault ("" when none)."""

    line: int | None
    id: str | None
    kind: str
    message: str
    fix: str = ""
    severity: str = "error"  # "error" or "warning" (a warning still scores, e.g. an empty answer)
    file: str | None = None
    field: str = ""
    params: dict[str, Any] = dataclass_field(default_factory=dict)

    @property
    def code(self) -> str:
        return self.kind

    @property
    def reason(self) -> str:  # the name finetune's rejected rows have always used for the message
        return self.message

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else (self.file or "")
        named = self.field and f"'{self.field}'" not in self.message  # evaluation's messages name their field
        said = f"field '{self.field}': {self.message}" if named else self.message
        return f"{where}: {said}" if where else said

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "id": self.id, "kind": self.kind, "message": self.message, "fix": self.fix,
                "severity": self.severity, "file": self.file, "field": self.field, "params": dict(self.params)}


def from_read_error(err, fix: str = "") -> Problem:
    """A safeio.SafeReadError as a problem (its kind, line and field kept)."""
    message = f"field '{err.field}': {err.reason}" if err.field else err.reason
    return Problem(err.line, None, err.kind, message, fix=fix, file=err.path, field=err.field,
                   params={"reason": err.reason})
