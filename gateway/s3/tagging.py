"""Object tags: the `x-amz-tagging` header, the Tagging XML document, and S3's limits on both.

Tags are stored per version by the coordinator as a plain {key: value} map; everything S3
checks about them (count, lengths, characters, duplicates) is checked here, once, for
PutObject, CreateMultipartUpload, CopyObject (REPLACE) and PutObjectTagging alike.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from gateway.s3.errors import S3Error
from gateway.s3.xmlio import find, find_all, find_text, parse_xml

MAX_TAGS = 10
MAX_KEY = 128
MAX_VALUE = 256
# Letters, digits, spaces and + - = . _ : / @ in any script, as S3 allows for tags.
_ALLOWED = re.compile(r"^[\w\s+\-=.:/@]*$", re.UNICODE)


def invalid(message: str) -> S3Error:
    return S3Error("InvalidTag", message, status=400)


def check(tags: list[tuple[str, str]]) -> dict[str, str]:
    """The tag map, or InvalidTag for what S3 refuses (too many, too long, repeated keys)."""
    if len(tags) > MAX_TAGS:
        raise invalid(f"Object tags cannot be greater than {MAX_TAGS}")
    out: dict[str, str] = {}
    for key, value in tags:
        if not key or len(key) > MAX_KEY:
            raise invalid(f"The TagKey you have provided is invalid: it must be 1 to {MAX_KEY} characters")
        if len(value) > MAX_VALUE:
            raise invalid(f"The TagValue you have provided is too long: at most {MAX_VALUE} characters")
        if not _ALLOWED.match(key) or not _ALLOWED.match(value):
            raise invalid("The TagKey or TagValue you have provided has characters S3 does not allow")
        if key in out:
            raise invalid("Cannot provide multiple Tags with the same key")
        out[key] = value
    return out


def from_header(value: str | None) -> dict[str, str] | None:
    """`x-amz-tagging: k1=v1&k2=v2` (URL query encoding); None without the header."""
    if value is None:
        return None
    try:
        pairs = parse_qsl(value, keep_blank_values=True, strict_parsing=bool(value))
    except ValueError:
        raise S3Error("InvalidArgument", "The header 'x-amz-tagging' shall be encoded as UTF-8 "
                      "then URLEncoded URL query parameters without tag name duplicates.",
                      ArgumentName="x-amz-tagging", ArgumentValue=value) from None
    return check(pairs)


def from_xml(body: bytes) -> dict[str, str]:
    """A PutObjectTagging body: `<Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging>`."""
    doc = parse_xml(body, "Tagging")
    tag_set = find(doc, "TagSet")
    if tag_set is None:
        raise S3Error("MalformedXML")
    pairs = []
    for tag in find_all(tag_set, "Tag"):
        key, value = find_text(tag, "Key"), find_text(tag, "Value")
        if key is None or value is None:
            raise S3Error("MalformedXML")
        pairs.append((key, value))
    return check(pairs)


def to_xml(tags: dict[str, str]) -> list[tuple[str, object]]:
    """The children of a GetObjectTagging answer."""
    return [("TagSet", [("Tag", [("Key", k), ("Value", v)]) for k, v in tags.items()] or {})]
