"""Errors of the trace-input layer."""

from __future__ import annotations

from kslab.mm.errors import KslabError


class TraceParseError(KslabError):
    """A trace line that cannot be understood.

    ``path`` is the file name as given (``"<stdin>"`` for standard input, the stream's ``name`` or
    ``"<stream>"`` for a file object), ``lineno`` the 1-based line number in the decompressed text,
    ``reason`` a short description such as ``"malformed: no timestamp"`` and ``line`` the offending
    line without its newline.
    """

    def __init__(self, path: str, lineno: int, reason: str, line: str) -> None:
        super().__init__(path, lineno, reason, line)
        self.path = path
        self.lineno = lineno
        self.reason = reason
        self.line = line

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: {self.reason}: {self.line!r:.80}"


class TraceInputError(KslabError, OSError):
    """A trace input that cannot be read at all (e.g. .zst without a zstd decompressor)."""
