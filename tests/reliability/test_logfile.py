"""Bounded-memory streaming of CloudTrail log files."""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trailguard_engine.logfile import LogFileError, iter_file_records, iter_records


def record(i: int, pad: int = 0) -> dict:
    return {
        "eventVersion": "1.09",
        "eventID": f"00000000-0000-4000-8000-{i:012d}",
        "eventName": "DescribeInstances",
        "eventSource": "ec2.amazonaws.com",
        "awsRegion": "us-east-1",
        "requestParameters": {"note": 'é∑ "quoted" ]}, braces' + "x" * pad},
    }


def log_bytes(records: list[dict], **dump) -> bytes:
    return json.dumps({"Records": records}, **dump).encode()


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 16])
def test_yields_every_record_in_order_whatever_the_chunking(chunk: int) -> None:
    recs = [record(i) for i in range(50)]
    got = list(iter_records(io.BytesIO(log_bytes(recs, indent=2)), chunk=chunk))
    assert got == recs


def test_empty_and_gzip_files() -> None:
    assert list(iter_records(io.BytesIO(b'{"Records": []}'))) == []
    recs = [record(i) for i in range(10)]
    gz = gzip.compress(log_bytes(recs))
    assert list(iter_file_records(io.BytesIO(gz), gzipped=True)) == recs


def test_truncated_gzip_yields_what_was_readable_then_raises() -> None:
    recs = [record(i, pad=200) for i in range(500)]
    gz = gzip.compress(log_bytes(recs))
    got = []
    with pytest.raises(LogFileError, match=r"truncated|corrupt"):
        for r in iter_file_records(io.BytesIO(gz[: len(gz) // 2]), gzipped=True):
            got.append(r)
    assert 0 < len(got) < len(recs)
    assert got == recs[: len(got)]


def test_truncated_small_gzip_still_yields_the_records_before_the_damage() -> None:
    recs = [record(i) for i in range(40)]  # well under one 64 KiB read
    gz = gzip.compress(log_bytes(recs))
    got = []
    with pytest.raises(LogFileError):
        for r in iter_file_records(io.BytesIO(gz[:-20]), gzipped=True):
            got.append(r)
    assert len(got) >= 30
    assert got == recs[: len(got)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"Digest": 1}', 'no "Records" array'),
        (b'{"Records": {"a": 1}}', "not an array"),
        (b'{"Records": [1, 2]}', "not an object"),
        (b'{"Records": [{"a": 1} {"b": 2}]}', "expected ','"),
        (b'{"Records": [{"a": 1}, {"b": ', "truncated"),
        (b'{"Records": [{"a": "\xff"}]}', "not UTF-8"),
    ],
)
def test_bad_files_raise_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(LogFileError, match=message):
        list(iter_records(io.BytesIO(data), chunk=8))


def test_memory_stays_bounded_on_a_large_file() -> None:
    recs = [record(i, pad=1000) for i in range(20_000)]  # ~22 MB of JSON
    gz = gzip.compress(log_bytes(recs), compresslevel=1)
    del recs
    tracemalloc.start()
    n = 0
    for _ in iter_file_records(io.BytesIO(gz), gzipped=True):
        n += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 20_000
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes: the reader is not streaming"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=1, max_value=64))
def test_arbitrary_bytes_never_raise_anything_but_logfileerror(data: bytes, chunk: int) -> None:
    try:
        for r in iter_records(io.BytesIO(data), chunk=chunk):
            assert isinstance(r, dict)
    except LogFileError:
        pass
