"""The one error safeio raises. The readers of finetune/ and evaluation/ turn it into their own error types."""

from __future__ import annotations


class SafeReadError(ValueError):
    """A file, or one of its rows, that cannot be read safely. `line` is 1-based (a sheet row for .xlsx; None for
    the file as a whole); `field` is the JSON path or column ("" when none); `kind` a short code for tables."""

    def __init__(self, path, line: int | None, field: str, reason: str, kind: str = "unreadable",
                 params: dict | None = None):
        self.path, self.line, self.field, self.reason, self.kind = str(path), line, field, reason, kind
        self.params = dict(params or {})  # the values the sentence of `kind` needs (safeio.problems.MESSAGES)
        super().__init__(self._text())

    def _text(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: field '{self.field}': {self.reason}" if self.field else f"{where}: {self.reason}"

    def __reduce__(self):  # crosses the worker process boundary (safeio.worker) intact
        return type(self), (self.path, self.line, self.field, self.reason, self.kind, self.params)


class LimitExceeded(SafeReadError):
    """A bound of safeio.Limits was hit; the reason names the limit and the flag / variable that raises it."""

    def __init__(self, path, line: int | None, field: str, reason: str, kind: str = "limit",
                 params: dict | None = None):
        super().__init__(path, line, field, reason, kind, params)


class NotUtf8(SafeReadError):
    """Bytes that are not UTF-8 (often GBK/GB18030): a reader may take the rest of the file as suspect too."""

    def __init__(self, path, line: int | None, field: str, reason: str, kind: str = "encoding",
                 params: dict | None = None):
        super().__init__(path, line, field, reason, kind, params)
