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
import hashlib
import json
import re
import zlib
from collections.abc import Iterator
from typing import IO, Any, Protocol

CHUNK = 1 << 16
MAX_RECORD_CHARS = 8 << 20  # a single CloudTrail record is far below this

#: ``AWSLogs/[o-orgid/]<account>/CloudTrail/<region>/YYYY/MM/DD/<name>.json.gz``. Digest
#: files (``CloudTrail-Digest/``) and Insights (``CloudTrail-Insight/``) do not match.
LOG_KEY = re.compile(
    r"^AWSLogs/(?:o-[a-z0-9]{10,32}/)?(?P<account>\d{12})/CloudTrail/[a-z0-9-]+/\d{4}/\d{2}/\d{2}/[^/]+\.json\.gz$"
)
#: ``AWSLogs/[o-orgid/]<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/<name>.json.gz``.
DIGEST_KEY = re.compile(
    r"^AWSLogs/(?:o-[a-z0-9]{10,32}/)?(?P<account>\d{12})/CloudTrail-Digest/(?P<region>[a-z0-9-]+)/"
    r"\d{4}/\d{2}/\d{2}/[^/]+\.json\.gz$"
)


def log_key_account(key: str) -> str | None:
    """The account a log file's key says it belongs to (CloudTrail writes each account's events under
    ``AWSLogs/[org-id/]<account>/``), or None for a key that is not a log file."""
    m = LOG_KEY.match(key)
    return m.group("account") if m else None


def is_digest_key(key: str) -> bool:
    """True for a CloudTrail digest file key (``.../CloudTrail-Digest/...``)."""
    return bool(DIGEST_KEY.match(key))


class HashingReader:
    """Wraps a byte stream and keeps the SHA-256 of every byte read through it.

    :func:`iter_file_records` puts it over the *decompressed* stream when asked for the hash: a
    CloudTrail digest's ``hashValue`` is the SHA-256 of a log file's uncompressed content, so the
    reconcile function learns it while reading the file once, with no second read.
    """

    def __init__(self, stream: Readable) -> None:
        self.stream = stream
        self._sha = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self.stream.read(size)
        self._sha.update(data)
        self.size += len(data)
        return data

    def drain(self, chunk: int = CHUNK) -> None:
        """Read (and hash) whatever the consumer left unread after the Records array."""
        try:
            while self.read(chunk):
                pass
        except (EOFError, OSError, zlib.error) as exc:
            raise LogFileError(f"truncated or corrupt compressed data after the records ({exc})") from exc

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


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


def iter_file_records(
    stream: IO[bytes], *, gzipped: bool, tap: list[HashingReader] | None = None
) -> Iterator[dict[str, Any]]:
    """Like :func:`iter_records`, decompressing gzip on the fly when ``gzipped``.

    With ``tap`` (an empty list), the :class:`HashingReader` over the uncompressed content is put
    in it; once every record was yielded the rest of the content is read too, so its
    :meth:`~HashingReader.hexdigest` is the SHA-256 of the whole uncompressed file.
    """
    if gzipped:
        with gzip.GzipFile(fileobj=stream, mode="rb") as gz:
            # read1 returns what is decompressed so far; read(n) insists on n bytes and would
            # raise on a truncated tail before handing over the complete records before it.
            yield from _hashed(_Read1(gz), tap)
    else:
        yield from _hashed(stream, tap)


def _hashed(source: Readable, tap: list[HashingReader] | None) -> Iterator[dict[str, Any]]:
    if tap is None:
        yield from iter_records(source)
        return
    reader = HashingReader(source)
    tap.append(reader)
    yield from iter_records(reader)
    reader.drain()
