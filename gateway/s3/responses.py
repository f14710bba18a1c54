"""Small builders shared by the handlers: XML answers, owner elements, tokens, integer params."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from config.values import BadValue, parse_uint
from gateway.s3.errors import XML_CONTENT_TYPE, S3Error
from gateway.s3.xmlio import to_xml

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
INT32_MAX = 2147483647


def xml_response(root: str, children: Any, status: int = 200,
                 headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=to_xml(root, children), content_type=XML_CONTENT_TYPE,
                        headers=dict(headers or {}))


def owner(user_id: str, display_name: str | None = None) -> list[tuple[str, str]]:
    return [("ID", user_id), ("DisplayName", display_name or user_id)]


def int_param(query: Mapping[str, str], name: str, default: int, *, low: int = 0,
              high: int | None = None, cap: int | None = None) -> int:
    """An integer query parameter; InvalidArgument when malformed or out of [low, high]."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    negative = raw.startswith("-")
    try:
        value = parse_uint(raw[1:] if negative else raw, INT32_MAX)
    except BadValue:
        raise S3Error("InvalidArgument", f"Provided {name} not an integer or within integer range",
                      ArgumentName=name, ArgumentValue=raw) from None
    if negative:
        value = -value
    if value < low or (high is not None and value > high):
        raise S3Error("InvalidArgument", f"Argument {name} must be an integer between {low} and "
                      f"{high if high is not None else INT32_MAX}", ArgumentName=name, ArgumentValue=raw)
    if cap is not None:
        value = min(value, cap)
    return value


MAX_PARTS = 10000


def parse_part_number(raw: str) -> int:
    """A `partNumber` query parameter: 1..10000, else InvalidArgument."""
    try:
        n = parse_uint(raw, MAX_PARTS)
    except BadValue:
        n = 0
    if n < 1:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive",
                      ArgumentName="partNumber", ArgumentValue=raw)
    return n


def encode_token(marker: str) -> str:
    """An opaque continuation token for `marker` (what the client hands back, unchanged)."""
    return base64.urlsafe_b64encode(marker.encode("utf-8")).decode("ascii")


def decode_token(token: str, name: str = "continuation-token") -> str:
    try:
        if not _TOKEN_RE.match(token):
            raise ValueError(token)
        marker = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
        if not marker:
            raise ValueError(token)
        return marker
    except (binascii.Error, UnicodeError, ValueError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect",
                      ArgumentName=name, ArgumentValue=token) from None
