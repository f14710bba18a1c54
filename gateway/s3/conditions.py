"""Range and conditional-request headers, parsed and judged the way S3 does.

Kept apart from the handlers because the rules are fiddly (which header wins over which,
what counts as unsatisfiable, what is silently ignored) and deserve unit tests of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from config import values
from gateway.s3.errors import S3Error

# Byte offsets are capped at this (far past any object, and exact in JSON and in a 64-bit
# column), however many digits a client sends: a capped start still lies past the end (416),
# a capped end still means "to the last byte".
MAX_RANGE_OFFSET = 1 << 53
_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*$", re.IGNORECASE | re.ASCII)


def _offset(digits: str) -> int:
    return values.parse_uint(digits, MAX_RANGE_OFFSET, saturate=True)


def _before(a: str, b: str) -> bool:
    """a < b for the digit strings of a range, however long (compared before capping)."""
    a, b = a.lstrip("0"), b.lstrip("0")
    return (len(a), a) < (len(b), b)


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range `start..end` within an object of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


def unsatisfiable(size: int) -> S3Error:
    """The 416 answer; S3 adds the object size as `ActualObjectSize` and `Content-Range: bytes */N`."""
    err = S3Error("InvalidRange", RangeRequested="", ActualObjectSize=str(size))
    err.headers = {"Content-Range": f"bytes */{size}"}  # type: ignore[attr-defined]
    return err


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """`Range: bytes=a-b | a- | -n` against an object of `size` bytes.

    None means "send the whole object": no header, or a header S3 ignores (bad syntax,
    several ranges, `b < a`). A syntactically fine range that selects no byte raises
    InvalidRange (416); the end is clamped to the last byte as HTTP requires.
    """
    if header is None:
        return None
    m = _RANGE_RE.match(header)
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":                       # suffix: the last n bytes
        n = _offset(last)
        if n == 0 or size == 0:
            raise _with_range(unsatisfiable(size), header)
        return ByteRange(max(0, size - n), size - 1, size)
    if last != "" and _before(last, first):
        return None
    start = _offset(first)
    end = _offset(last) if last != "" else size - 1
    if start >= size:
        raise _with_range(unsatisfiable(size), header)
    return ByteRange(start, min(end, size - 1), size)


def explicit_range(header: str | None) -> tuple[int, int | None] | None:
    """The bounds of `bytes=a-b` (b >= a) or `bytes=a-` (end None), known without the object's
    size; None for anything else (no header, a suffix range, a range S3 ignores). Where the
    object has those bytes, parse_range yields exactly these bounds, the end clamped to it."""
    if header is None:
        return None
    m = _RANGE_RE.match(header)
    if m is None or m.group(1) == "":
        return None
    start = _offset(m.group(1))
    if m.group(2) == "":
        return start, None
    if _before(m.group(2), m.group(1)):
        return None
    return start, _offset(m.group(2))


def suffix_length(header: str | None) -> int | None:
    """The n of `bytes=-n` (the last n bytes), None for anything else."""
    if header is None:
        return None
    m = _RANGE_RE.match(header)
    if m is None or m.group(1) != "" or m.group(2) == "":
        return None
    return _offset(m.group(2))


def manifest_narrowing(range_header: str | None, part: int | None) -> dict[str, int]:
    """How the coordinator may narrow the manifest to the chunks a GET (or an UploadPartCopy's
    x-amz-copy-source-range) reads: coordinator get_object keyword arguments.

    The part, the Range header's bounds (`bytes=a-b`, `bytes=a-`) or its suffix (`bytes=-n`).
    Nothing for no header or one S3 ignores (several ranges, b < a): the whole manifest.
    parse_range and the GET handler's part range then yield exactly the bytes the
    coordinator selected by, so the chunks fetched always cover the bytes read.
    """
    if part is not None:
        return {"part_number": part}
    bounds = explicit_range(range_header)
    if bounds is not None:
        start, end = bounds
        narrowed = {"range_start": start}
        if end is not None:
            narrowed["range_end"] = end
        return narrowed
    suffix = suffix_length(range_header)
    return {} if suffix is None else {"range_suffix": suffix}


def _with_range(err: S3Error, header: str) -> S3Error:
    err.extra["RangeRequested"] = header
    return err


def parse_copy_source_range(header: str, size: int) -> ByteRange:
    """`x-amz-copy-source-range: bytes=a-b` (UploadPartCopy): both ends required, within the source."""
    m = _RANGE_RE.match(header)
    if m is None or m.group(1) == "" or m.group(2) == "":
        raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form "
                      "bytes=first-last where first and last are the zero-based offsets of the first "
                      "and last bytes to copy", ArgumentName="x-amz-copy-source-range",
                      ArgumentValue=header)
    start, end = _offset(m.group(1)), _offset(m.group(2))
    if _before(m.group(2), m.group(1)):
        raise S3Error("InvalidArgument", "The x-amz-copy-source-range value is invalid: last < first",
                      ArgumentName="x-amz-copy-source-range", ArgumentValue=header)
    if end >= size:
        raise S3Error("InvalidRange", f"The requested range {header} is not satisfiable for an object "
                      f"of {size} bytes", RangeRequested=header, ActualObjectSize=str(size))
    return ByteRange(start, end, size)


def parse_http_date(value: str | None) -> float | None:
    """RFC 7231 date -> unix seconds; None when absent or unparseable (S3 then ignores the header)."""
    if not value:
        return None
    try:
        return values.parse_http_date(value)
    except values.BadValue:
        return None


def _etag_matches(header: str, etag: str) -> bool:
    """Does any entity tag of a comma list (or `*`) name `etag`? Weak tags compare by value."""
    bare = etag.strip().strip('"')
    for item in header.split(","):
        tag = item.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == bare:
            return True
    return False


class Outcome(Enum):
    PROCEED = "proceed"
    NOT_MODIFIED = "not_modified"          # 304
    PRECONDITION_FAILED = "precondition"   # 412


@dataclass(frozen=True)
class Conditions:
    """The four If-* headers of a GET/HEAD (or the x-amz-copy-source-if-* of a copy)."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: float | None = None
    if_unmodified_since: float | None = None

    @classmethod
    def from_headers(cls, headers: object, prefix: str = "") -> Conditions:
        """Read `{prefix}If-Match` etc.; prefix is "x-amz-copy-source-" for copies."""
        get = headers.get  # type: ignore[attr-defined]
        return cls(
            if_match=get(f"{prefix}If-Match"),
            if_none_match=get(f"{prefix}If-None-Match"),
            if_modified_since=parse_http_date(get(f"{prefix}If-Modified-Since")),
            if_unmodified_since=parse_http_date(get(f"{prefix}If-Unmodified-Since")),
        )

    def evaluate(self, etag: str, last_modified: float) -> Outcome:
        """S3's precedence (RFC 7232 section 6, with S3's pairings).

        If-Match true makes a false If-Unmodified-Since irrelevant; If-None-Match false
        (the tag differs) makes a false If-Modified-Since irrelevant. 412 outcomes are
        checked before 304 ones. Times compare at whole seconds, as Last-Modified shows them.
        """
        lm = int(last_modified)
        if self.if_match is not None:
            if not _etag_matches(self.if_match, etag):
                return Outcome.PRECONDITION_FAILED
        elif self.if_unmodified_since is not None and lm > self.if_unmodified_since:
            return Outcome.PRECONDITION_FAILED
        if self.if_none_match is not None:
            if _etag_matches(self.if_none_match, etag):
                return Outcome.NOT_MODIFIED
        elif self.if_modified_since is not None and lm <= self.if_modified_since:
            return Outcome.NOT_MODIFIED
        return Outcome.PROCEED
