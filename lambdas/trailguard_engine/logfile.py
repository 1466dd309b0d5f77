"""Stream the records of a CloudTrail log file in bounded memory.

A CloudTrail log file is one JSON object, ``{"Records": [ ... ]}``, gzip
compressed; busy accounts produce files of many megabytes. The reconciliation
function must not hold a whole file (or its parsed form) in memory, so this
module decodes the ``Records`` array one record at a time with the standard
library's ``JSONDecoder.raw_decode`` over a sliding buffer. It is written by
hand because the well-known streaming parser (ijson) ships a compiled backend
per CPU architecture, and the Lambda layer here is built without Docker from
pure-Python wheels.
"""

from __future__ import annotations

import codecs
import gzip
import json
import zlib
from collections.abc import Iterator
from typing import IO, Any, Protocol

CHUNK = 1 << 16
MAX_RECORD_CHARS = 8 << 20  # a single CloudTrail record is far below this


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class LogFileError(ValueError):
    """The file is not a CloudTrail log file, or it is corrupt or truncated."""


class _Reader:
    def __init__(self, stream: Readable, chunk: int) -> None:
        self.stream = stream
        self.chunk = chunk
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.buf = ""
        self.pos = 0
        self.eof = False

    def more(self) -> bool:
        """Append the next chunk to the buffer (dropping what was consumed). False at EOF."""
        if self.eof:
            return False
        try:
            data = self.stream.read(self.chunk)
        except (EOFError, OSError, zlib.error) as exc:  # truncated or corrupt gzip
            raise LogFileError(f"truncated or corrupt compressed data ({exc})") from exc
        if self.pos:
            self.buf = self.buf[self.pos :]
            self.pos = 0
        try:
            if not data:
                self.eof = True
                self.buf += self.decoder.decode(b"", final=True)
                return False
            self.buf += self.decoder.decode(data)
        except UnicodeDecodeError as exc:
            raise LogFileError(f"not UTF-8 text ({exc.reason})") from exc
        return True

    def skip_ws(self) -> str:
        """The next non-whitespace character ('' at EOF), without consuming it."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""


def iter_records(stream: Readable, *, chunk: int = CHUNK) -> Iterator[dict[str, Any]]:
    """Yield each record of the ``Records`` array of an (uncompressed) CloudTrail log stream.

    Raises :class:`LogFileError` for a file without ``Records``, a corrupt
    record or a truncated file (records before the damage are yielded first).
    """
    r = _Reader(stream, chunk)
    decoder = json.JSONDecoder()
    key = '"Records"'
    # Find the Records key, then the opening bracket of its array.
    while True:
        idx = r.buf.find(key, r.pos)
        if idx >= 0:
            r.pos = idx + len(key)
            break
        r.pos = max(r.pos, len(r.buf) - len(key))
        if len(r.buf) > MAX_RECORD_CHARS or not r.more():
            raise LogFileError('no "Records" array: not a CloudTrail log file')
    if r.skip_ws() != ":":
        raise LogFileError('"Records" is not followed by ":"')
    r.pos += 1
    if r.skip_ws() != "[":
        raise LogFileError('"Records" is not an array')
    r.pos += 1
    first = True
    while True:
        ch = r.skip_ws()
        if ch == "]":
            return
        if ch == "":
            raise LogFileError("file ends inside the Records array (truncated)")
        if not first:
            if ch != ",":
                raise LogFileError(f"expected ',' between records, found {ch!r}")
            r.pos += 1
            r.skip_ws()
        while True:
            try:
                obj, end = decoder.raw_decode(r.buf, r.pos)
                break
            except json.JSONDecodeError as exc:
                if len(r.buf) - r.pos > MAX_RECORD_CHARS:
                    raise LogFileError(f"record larger than {MAX_RECORD_CHARS} characters or corrupt") from exc
                if not r.more():
                    raise LogFileError(f"file ends inside a record (truncated): {exc.msg}") from exc
        r.pos = end
        first = False
        if not isinstance(obj, dict):
            raise LogFileError(f"a record is a {type(obj).__name__}, not an object")
        yield obj


class _Read1:
    def __init__(self, gz: gzip.GzipFile) -> None:
        self.gz = gz

    def read(self, size: int = -1, /) -> bytes:
        return self.gz.read1(size)


def iter_file_records(stream: IO[bytes], *, gzipped: bool) -> Iterator[dict[str, Any]]:
    """Like :func:`iter_records`, decompressing gzip on the fly when ``gzipped``."""
    if gzipped:
        with gzip.GzipFile(fileobj=stream, mode="rb") as gz:
            # read1 returns what is decompressed so far; read(n) insists on n bytes and would
            # raise on a truncated tail before handing over the complete records before it.
            yield from iter_records(_Read1(gz))
    else:
        yield from iter_records(stream)
