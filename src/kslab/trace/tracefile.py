"""Trace input: opening a trace (a path, ``-`` for standard input, an open file object), decompressing
.gz/.xz/.lzma/.bz2/.zst on the fly, cutting it into lines, and turning read and decompression errors
into one :class:`~kslab.trace.errors.TraceInputError` naming the input and the line reached.

Used by the parser, :func:`kslab.trace.ftrace.iter_events`; it knows nothing of the lines' content.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import importlib
import lzma
import os
import shutil
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import IO, Any, Final, TypeAlias

from kslab.trace.errors import TraceInputError

__all__ = ["CHUNK_SIZE", "Source", "checked_batches", "line_batches", "open_trace_text"]

#: What ``iter_events`` accepts: a path, ``"-"`` for standard input, or an open file object
#: (text, or binary which is then decoded as UTF-8).
Source: TypeAlias = "str | os.PathLike[str] | IO[str] | IO[bytes]"

#: Size of the reads from the input (characters for text streams, bytes otherwise).
CHUNK_SIZE: Final = 1 << 20

# Longer "lines" (binary garbage without newlines) are cut into pieces of this length.
_MAX_LINE: Final = 1 << 20


_Read = Callable[[int], Any]  # read(n) -> str or bytes


def _zstd_reader(path: str, stack: ExitStack) -> _Read:
    """``read`` of the decompressed content of a .zst file: through the ``zstandard`` module if
    it is installed, else through a ``zstd -dc`` child process."""
    try:
        zstandard: Any = importlib.import_module("zstandard")
    except ImportError:
        zstandard = None
    if zstandard is not None:
        raw = stack.enter_context(open(path, "rb"))  # noqa: SIM115 - the ExitStack closes it
        dctx = zstandard.ZstdDecompressor()
        try:
            reader = dctx.stream_reader(raw, read_across_frames=True)
        except TypeError:  # zstandard < 0.17 reads one frame only
            reader = dctx.stream_reader(raw)
        stack.callback(reader.close)
        return reader.read  # type: ignore[no-any-return]
    exe = shutil.which("zstd")
    if exe is None:
        raise TraceInputError(
            f"{path}: reading .zst input needs the 'zstandard' Python module or the 'zstd' program"
        )
    proc = subprocess.Popen([exe, "-dcq", "--", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout, proc.stderr
    at_end = False

    def read(size: int) -> bytes:
        nonlocal at_end
        data = stdout.read(size)
        at_end = not data
        return data

    def finish() -> None:
        if not at_end:  # the reader stopped early: stop the decompressor
            proc.kill()
        stdout.close()
        err = stderr.read().decode("utf-8", "replace").strip()
        stderr.close()
        code = proc.wait()
        if at_end and code != 0:
            raise TraceInputError(f"{path}: zstd failed ({code}): {err}")

    stack.callback(finish)
    return read


def open_trace_text(source: Source, stack: ExitStack) -> tuple[_Read, bool, str]:
    """Open ``source`` for reading; what is opened here is closed by ``stack``.

    Returns ``(read, is_binary, display_name)`` where ``read(n)`` returns up to ``n`` characters
    (or bytes when ``is_binary``).  Paths ending in .gz, .xz, .lzma, .bz2 or .zst are decompressed.
    File objects are read as they are and not closed.
    """
    if isinstance(source, str) and source == "-":
        buf = getattr(sys.stdin, "buffer", None)
        if buf is not None:
            return buf.read, True, "<stdin>"
        return sys.stdin.read, False, "<stdin>"
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        low = path.lower()
        if low.endswith(".zst"):
            return _zstd_reader(path, stack), True, path
        opener: Callable[[str, str], Any] = open
        if low.endswith(".gz"):
            opener = gzip.open
        elif low.endswith((".xz", ".lzma")):
            opener = lzma.open
        elif low.endswith(".bz2"):
            opener = bz2.open
        stream = opener(path, "rb")
        stack.callback(stream.close)
        return stream.read, True, path
    probe = source.read(0)
    name = getattr(source, "name", None)
    display = name if isinstance(name, str) else "<stream>"
    return source.read, isinstance(probe, (bytes, bytearray)), display


def line_batches(read: _Read, binary: bool, chunk_size: int = CHUNK_SIZE) -> Iterator[list[str]]:
    """Lists of lines without their newline, about ``chunk_size`` characters at a time.

    Bytes are decoded as UTF-8, invalid sequences replaced by U+FFFD.  ``\\r\\n`` ends a line too.  A
    byte-order mark at the start is dropped.
    """
    decode = codecs.getincrementaldecoder("utf-8")("replace").decode if binary else None
    carry = ""
    bom = True
    while True:
        data = read(chunk_size)
        if not data:
            break
        text: str = decode(data) if decode is not None else data
        if bom:
            bom = False
            if text[:1] == "\ufeff":  # a byte-order mark, as some editors save a file: not text
                text = text[1:]
        if carry:
            text = carry + text
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        carry = lines.pop()
        if len(carry) > _MAX_LINE:  # no newline for a long while: binary garbage, cut it
            lines.append(carry)
            carry = ""
        if lines:
            yield lines
    if decode is not None:
        carry += decode(b"", True)
    if carry.endswith("\r"):
        carry = carry[:-1]
    if carry:
        yield [carry]


def checked_batches(batches: Iterator[list[str]], path: str, lineno: Callable[[], int]) -> Iterator[list[str]]:
    """``batches``, with the errors of a corrupt or truncated compressed input (and of reading) turned
    into one :class:`TraceInputError` naming the input and the line reached."""
    while True:
        try:
            lines = next(batches)
        except StopIteration:
            return
        except TraceInputError:
            raise
        except (EOFError, OSError, ValueError, lzma.LZMAError, zlib.error) as e:
            raise _input_error(path, lineno(), e) from e
        except Exception as e:
            if e.__class__.__name__ != "ZstdError":  # zstandard's, when that module is used
                raise
            raise _input_error(path, lineno(), e) from e
        yield lines


def _input_error(path: str, lineno: int, e: BaseException) -> TraceInputError:
    what = " ".join((getattr(e, "strerror", None) or str(e) or e.__class__.__name__).split())
    where = f"after line {lineno}"
    low = path.lower()
    tool = next((t for ext, t in ((".gz", "gzip"), (".xz", "xz"), (".lzma", "xz"), (".bz2", "bzip2"),
                                  (".zst", "zstd")) if low.endswith(ext)), None)
    if tool is None:
        return TraceInputError(f"{path}: read error {where}: {what}")
    if isinstance(e, EOFError):
        return TraceInputError(f"{path}: the compressed data is cut short {where} (a truncated file?): {what}; "
                               f"'{tool} -dc' recovers the text before the cut")
    return TraceInputError(f"{path}: not valid {tool} data {where}: {what}; kslab picks the decompressor "
                           f"by the file name's ending: rename the file if it is not {tool}-compressed")


# --------------------------------------------------------------------------------------------
# Slow paths: prefixes, odd lines, odd fields
