"""Range and If-* header rules (gateway/s3/conditions.py), as S3 applies them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordinator.objects import read_span
from coordinator.records import ObjectInfo, PartInfo
from gateway.s3.conditions import (
    MAX_RANGE_OFFSET,
    ByteRange,
    Conditions,
    Outcome,
    explicit_range,
    manifest_narrowing,
    parse_copy_source_range,
    parse_range,
    suffix_length,
)
from gateway.s3.errors import S3Error
from gateway.s3.handlers_objects import _part_range

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
    ("bytes=" + "9" * 4301 + "-", 100),
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
    ("bytes=0-" + "9" * 4301, (0, MAX_RANGE_OFFSET)), ("bytes=" + "9" * 4301 + "-" + "8" * 4301, None),
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


@pytest.mark.parametrize(("header", "n"), [
    ("bytes=-10", 10), ("bytes = - 0", 0), ("BYTES=-7", 7), ("bytes=-", None), ("bytes=0-10", None),
    ("bytes=5-", None), ("bytes=-1,-2", None), (None, None),
])
def test_suffix_length(header: str | None, n: int | None) -> None:
    assert suffix_length(header) == n


def _span_of(size: int, parts: list[PartInfo], narrowing: dict[str, int]) -> tuple[int, int] | None:
    return read_span(size, parts, narrowing.get("range_start"), narrowing.get("range_end"),
                     narrowing.get("range_suffix"), narrowing.get("part_number"))


_NUMBER = st.one_of(st.integers(0, 2000), st.integers(0, 1 << 62)).map(str) | st.just("")
_HEADERS = st.one_of(
    st.none(), st.tuples(_NUMBER, _NUMBER).map(lambda ab: f"bytes={ab[0]}-{ab[1]}"),
    st.sampled_from(["bytes=0-1,5-6", "items=0-5", "bytes=", "rubbish"]))


@given(header=_HEADERS, size=st.integers(0, 3000))
def test_the_manifest_a_range_selects_is_the_bytes_the_answer_reads(header: str | None, size: int) -> None:
    """The coordinator narrows the manifest (read_span) before the gateway knows the size;
    the bytes parse_range then answers with must be exactly those, or the GET would 503."""
    narrowing = manifest_narrowing(header, None)
    try:
        rng = parse_range(header, size)
    except S3Error:                   # 416: nothing is read, so nothing need be selected
        assert narrowing and _span_of(size, [], narrowing) is None
        return
    if rng is None:                   # the whole object
        assert narrowing == {}
    else:
        assert _span_of(size, [], narrowing) == (rng.start, rng.end)


@given(sizes=st.lists(st.integers(0, 50), max_size=6), n=st.integers(1, 8))
def test_the_manifest_a_part_number_selects_is_the_part_read(sizes: list[int], n: int) -> None:
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    parts = [PartInfo(part_number=i + 1, size=z, etag='"x"', offset=o)
             for i, (z, o) in enumerate(zip(sizes, offsets, strict=True))]
    size = sum(sizes) if parts else 37
    obj = ObjectInfo(bucket="b", key="k", version_id="v", tenant_id="t", size=size, etag='"x"',
                     last_modified=0.0, parts=parts)
    span = _span_of(size, parts, manifest_narrowing(None, n))
    try:
        rng = _part_range(n, obj, {})
    except S3Error:
        assert span is None
        return
    if rng is None:                   # a non-multipart object is its own part 1
        assert span == (0, size - 1)
    elif rng.length == 0:
        assert span is None
    else:
        assert span == (rng.start, rng.end)


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
    for absurd in ("Tue, 14 Nov 99999999999 22:13:20 GMT", "Tue, 14 Nov 10000 22:13:20 GMT",
                   "Tue, 31 Feb 2023 22:13:20 GMT", "Tue, 14 Nov 2023 99:13:20 GMT", "1" * 5000,
                   "Tue, 14 Nov 2023 22:13:20 +99999999999"):
        assert _eval(**{"If-Modified-Since": absurd}) is Outcome.PROCEED
        assert _eval(**{"If-Unmodified-Since": absurd}) is Outcome.PROCEED
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
