"""Range and If-* header rules (gateway/s3/conditions.py), as S3 applies them."""

from __future__ import annotations

import pytest

from gateway.s3.conditions import (
    ByteRange,
    Conditions,
    Outcome,
    explicit_range,
    parse_copy_source_range,
    parse_range,
)
from gateway.s3.errors import S3Error

ETAG = '"0123456789abcdef0123456789abcdef"'
LM = 1_700_000_000.75          # Last-Modified shows whole seconds: Tue, 14 Nov 2023 22:13:20 GMT
LM_HTTP = "Tue, 14 Nov 2023 22:13:20 GMT"
EARLIER = "Tue, 14 Nov 2023 22:13:19 GMT"
LATER = "Tue, 14 Nov 2023 22:13:21 GMT"


@pytest.mark.parametrize(("header", "size", "expected"), [
    ("bytes=0-9", 100, ByteRange(0, 9, 100)),
    ("bytes=10-", 100, ByteRange(10, 99, 100)),
    ("bytes=-10", 100, ByteRange(90, 99, 100)),
    ("bytes=-1000", 100, ByteRange(0, 99, 100)),        # suffix longer than the object
    ("bytes=90-1000", 100, ByteRange(90, 99, 100)),     # end clamped
    ("bytes=99-99", 100, ByteRange(99, 99, 100)),
    ("BYTES = 1 - 2", 100, ByteRange(1, 2, 100)),
])
def test_satisfiable_ranges(header: str, size: int, expected: ByteRange) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", [None, "", "bytes=", "bytes=-", "items=0-1", "bytes=0-1,3-4",
                                    "bytes=5-3", "bytes=a-b", "0-10"])
def test_ignored_ranges_mean_whole_object(header: str | None) -> None:
    assert parse_range(header, 100) is None


@pytest.mark.parametrize(("header", "size"), [
    ("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=-0", 100), ("bytes=0-", 0), ("bytes=-5", 0),
])
def test_unsatisfiable_ranges_are_416_with_content_range(header: str, size: int) -> None:
    with pytest.raises(S3Error) as info:
        parse_range(header, size)
    err = info.value
    assert (err.code, err.status) == ("InvalidRange", 416)
    assert err.headers == {"Content-Range": f"bytes */{size}"}
    assert err.extra["ActualObjectSize"] == str(size)
    assert err.extra["RangeRequested"] == header


@pytest.mark.parametrize(("header", "bounds"), [
    ("bytes=0-99", (0, 99)), ("bytes= 5 - ", (5, None)), ("BYTES=7-7", (7, 7)),
    (f"bytes={(1 << 60) + 5}-{1 << 60}", None), ("bytes=9-3", None), ("bytes=-10", None),
    ("bytes=0-1,4-5", None), ("items=0-9", None), (None, None),
])
def test_explicit_range_bounds_agree_with_parse_range(header: str | None, bounds) -> None:
    """The manifest is selected by these bounds before the size is known; whatever they
    select must cover what parse_range later reads."""
    assert explicit_range(header) == bounds
    if bounds is not None:
        start, end = bounds
        got = parse_range(header, 1000)
        assert got == ByteRange(start, 999 if end is None else min(end, 999), 1000)


def test_content_range_header() -> None:
    assert ByteRange(5, 9, 100).content_range() == "bytes 5-9/100"
    assert ByteRange(5, 9, 100).length == 5


def test_copy_source_range() -> None:
    assert parse_copy_source_range("bytes=0-4", 10) == ByteRange(0, 4, 10)
    for bad in ("bytes=0-", "bytes=-4", "bytes=4-2", "rubbish"):
        with pytest.raises(S3Error) as info:
            parse_copy_source_range(bad, 10)
        assert info.value.code == "InvalidArgument"
    with pytest.raises(S3Error) as info:
        parse_copy_source_range("bytes=5-10", 10)
    assert info.value.code == "InvalidRange"


def _eval(**headers: str) -> Outcome:
    return Conditions.from_headers(headers).evaluate(ETAG, LM)


def test_no_conditions_proceed() -> None:
    assert _eval() is Outcome.PROCEED


@pytest.mark.parametrize(("value", "outcome"), [
    (ETAG, Outcome.PROCEED), ("0123456789abcdef0123456789abcdef", Outcome.PROCEED), ("*", Outcome.PROCEED),
    ('"other", ' + ETAG, Outcome.PROCEED), ('"other"', Outcome.PRECONDITION_FAILED),
])
def test_if_match(value: str, outcome: Outcome) -> None:
    assert _eval(**{"If-Match": value}) is outcome


@pytest.mark.parametrize(("value", "outcome"), [
    (ETAG, Outcome.NOT_MODIFIED), ("W/" + ETAG, Outcome.NOT_MODIFIED), ("*", Outcome.NOT_MODIFIED),
    ('"other"', Outcome.PROCEED),
])
def test_if_none_match(value: str, outcome: Outcome) -> None:
    assert _eval(**{"If-None-Match": value}) is outcome


def test_dates_compare_at_whole_seconds() -> None:
    assert _eval(**{"If-Modified-Since": LM_HTTP}) is Outcome.NOT_MODIFIED
    assert _eval(**{"If-Modified-Since": EARLIER}) is Outcome.PROCEED
    assert _eval(**{"If-Unmodified-Since": LM_HTTP}) is Outcome.PROCEED
    assert _eval(**{"If-Unmodified-Since": EARLIER}) is Outcome.PRECONDITION_FAILED
    assert _eval(**{"If-Unmodified-Since": LATER}) is Outcome.PROCEED


def test_unparseable_dates_are_ignored() -> None:
    assert _eval(**{"If-Modified-Since": "yesterday"}) is Outcome.PROCEED
    assert _eval(**{"If-Unmodified-Since": "garbage"}) is Outcome.PROCEED


def test_s3_precedence() -> None:
    # If-Match true wins over a false If-Unmodified-Since: 200.
    assert _eval(**{"If-Match": ETAG, "If-Unmodified-Since": EARLIER}) is Outcome.PROCEED
    # If-None-Match false (tag differs) wins over a false If-Modified-Since: 200.
    assert _eval(**{"If-None-Match": '"other"', "If-Modified-Since": LATER}) is Outcome.PROCEED
    # 412 is decided before 304.
    assert _eval(**{"If-Match": '"other"', "If-None-Match": ETAG}) is Outcome.PRECONDITION_FAILED
    assert _eval(**{"If-Match": ETAG, "If-Modified-Since": LATER}) is Outcome.NOT_MODIFIED


def test_copy_source_prefix() -> None:
    headers = {"x-amz-copy-source-If-Match": '"other"'}
    cond = Conditions.from_headers(headers, "x-amz-copy-source-")
    assert cond.evaluate(ETAG, LM) is Outcome.PRECONDITION_FAILED
