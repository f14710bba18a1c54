"""Untrusted text values, parsed with bounded length and explicit ranges.

Every server reads numbers, dates and secrets out of headers and query strings written
by whoever connects. Python's own parsers are too lenient or too fragile for that:
`str.isdigit()` accepts `²` which `int()` then refuses, `int()` accepts `٣`, ` 5`, `+5`
and `5_0` and raises past 4,300 digits, `email.utils` takes hour 99 and year 99999999999
(which `calendar.timegm` then fails on), and `hmac.compare_digest` raises on non-ASCII
text. Each kind of value is parsed here once, by one function every caller uses; a bad
value raises `BadValue` (a ValueError) with a short reason, which the caller turns into
its precise error answer (S3 400/403/416, or 400/401/403 internally), never a 500.
"""

from __future__ import annotations

import calendar
import hmac
import re
from email.utils import parsedate_tz

MAX_NUMBER_TEXT = 64        # "0000...1" is fine, a page of digits is not
MAX_DATE_TEXT = 128
MIN_YEAR = 1900
MAX_YEAR = 9999

_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_HEADER_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z", re.ASCII)
_ISO_UTC = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?Z", re.ASCII)


class BadValue(ValueError):
    """A value that is malformed or out of its range; the message says which."""


def parse_uint(text: str, high: int, *, saturate: bool = False) -> int:
    """ASCII decimal digits only (no sign, space or underscore) -> 0..high.

    Past `high`: BadValue, or `high` itself with `saturate` (HTTP byte ranges, where any
    number beyond the object means "to the end"); a saturating value may have any number
    of digits (the HTTP parser already bounds a header's length).
    """
    if not saturate and len(text) > MAX_NUMBER_TEXT:
        raise BadValue(f"number of {len(text)} characters")
    if not _DIGITS.fullmatch(text):
        raise BadValue("not a non-negative decimal integer")
    significant = text.lstrip("0")
    if len(significant) <= len(str(high)):
        value = int(significant or "0")
        if value <= high:
            return value
    if saturate:
        return high
    raise BadValue(f"larger than {high}")


def _check_fields(year: int, month: int, day: int, hour: int, minute: int, second: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise BadValue(f"year outside {MIN_YEAR}..{MAX_YEAR}")
    if not 1 <= month <= 12:
        raise BadValue("month outside 1..12")
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise BadValue("no such day in that month")
    if not (0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 60):
        raise BadValue("time of day out of range")


def parse_http_date(text: str) -> float:
    """An HTTP date (IMF-fixdate, RFC 850 or asctime; a numeric zone is accepted) -> unix time.

    A date without a zone is GMT, as HTTP dates always are.
    """
    if len(text) > MAX_DATE_TEXT:
        raise BadValue("date too long")
    try:
        parsed = parsedate_tz(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        parsed = None
    if parsed is None:
        raise BadValue("not an HTTP date")
    year, month, day, hour, minute, second = parsed[:6]
    _check_fields(year, month, day, hour, minute, second)
    offset = parsed[9] or 0
    if not -86400 < offset < 86400:
        raise BadValue("time zone offset out of range")
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset)


def parse_amz_date(text: str) -> float:
    """`YYYYMMDDTHHMMSSZ` (ISO 8601 basic, as X-Amz-Date carries it) -> unix time."""
    m = _AMZ_DATE.fullmatch(text)
    if m is None:
        raise BadValue("not a YYYYMMDDTHHMMSSZ date")
    fields = tuple(int(g) for g in m.groups())
    _check_fields(*fields)
    return float(calendar.timegm((*fields, 0, 0, 0)))


def parse_iso_utc(text: str) -> float:
    """`YYYY-MM-DDTHH:MM:SS[.fff]Z` (ISO 8601 extended, UTC, as a POST policy's expiration) -> unix time."""
    m = _ISO_UTC.fullmatch(text)
    if m is None:
        raise BadValue("not a YYYY-MM-DDTHH:MM:SSZ time")
    fields = tuple(int(g) for g in m.groups())
    _check_fields(*fields)
    return float(calendar.timegm((*fields, 0, 0, 0)))


def as_bytes(value: str | bytes) -> bytes:
    """Text as the bytes it arrived as (undecodable request bytes are kept as surrogates)."""
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


def secrets_equal(expected: str | bytes, provided: str | bytes) -> bool:
    """Constant-time comparison of a computed secret value with a provided one, as bytes.

    `hmac.compare_digest` on str refuses non-ASCII text with a TypeError; whatever a
    client sends must compare as simply unequal.
    """
    return hmac.compare_digest(as_bytes(expected), as_bytes(provided))


def header_safe(text: str) -> bool:
    """May this text go out as an HTTP header value? No control characters (tab aside),
    no DEL, nothing that does not encode to UTF-8 (lone surrogates)."""
    if _HEADER_UNSAFE.search(text):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
