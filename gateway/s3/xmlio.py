"""Reading and writing the XML documents of the S3 API.

Requests are parsed with defusedxml (no entities, no DTDs) and matched by local name, because
clients send the `http://s3.amazonaws.com/doc/2006-03-01/` namespace or none at all. Responses
are built from plain Python values so handlers never concatenate XML by hand.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from gateway.s3.errors import S3Error

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'

# Characters that need an entity in element text. \r gets one so it survives parsing (a raw
# \r would be normalised to \n); other C0 controls are not legal XML 1.0 characters, S3 emits
# them as character references and so do we. Lone surrogates (undecodable request bytes kept
# by surrogateescape) cannot be encoded at all and become U+FFFD.
_NEEDS_ESCAPE = re.compile(r"[&<>\x00-\x08\x0b\x0c\x0d\x0e-\x1f\ud800-\udfff]")
_ENTITY = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group(0)
    if "\ud800" <= ch <= "\udfff":
        return "\ufffd"
    return _ENTITY.get(ch) or f"&#x{ord(ch):x};"


def escape_text(value: str) -> str:
    """Escape `value` for use as XML element text."""
    return _NEEDS_ESCAPE.sub(_escape_char, value)


def local_name(tag: str) -> str:
    """`{namespace}Name` -> `Name`."""
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def parse_xml(body: bytes, root: str) -> Element:
    """Parse a request document whose root element must be `root` (any or no namespace).

    Garbage, entity/DTD tricks and a wrong root all answer MalformedXML, as S3 does.
    """
    if not body or not body.strip():
        raise S3Error("MalformedXML")
    try:
        el = SafeET.fromstring(body, forbid_dtd=True)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
        raise S3Error("MalformedXML") from exc
    if local_name(el.tag) != root:
        raise S3Error("MalformedXML")
    return el


def find(el: Element, name: str) -> Element | None:
    """First direct child of `el` with local name `name`."""
    for child in el:
        if local_name(child.tag) == name:
            return child
    return None


def find_text(el: Element, name: str) -> str | None:
    """Text of the first direct child named `name` ("" if empty), None if there is none."""
    child = find(el, name)
    if child is None:
        return None
    return child.text or ""


def find_all(el: Element, name: str) -> list[Element]:
    """All direct children of `el` with local name `name`, in document order."""
    return [child for child in el if local_name(child.tag) == name]


@dataclass(frozen=True)
class Attributed:
    """An element value with XML attributes, e.g. the `xsi:type` of an ACL grantee."""

    attributes: Mapping[str, str]
    value: Any


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape_text(str(value))


def _is_pairs(value: Sequence[Any]) -> bool:
    return all(isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) for item in value)


def _emit(out: list[str], tag: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, Attributed):
        attrs = "".join(f' {name}="{escape_text(v).replace(chr(34), "&quot;")}"'
                        for name, v in value.attributes.items())
        inner: list[str] = []
        _emit(inner, tag, value.value)
        if inner and inner[0] == f"<{tag}>":
            inner[0] = f"<{tag}{attrs}>"
        elif inner:  # scalar text: <tag>text</tag>
            inner[0] = f"<{tag}{attrs}>" + inner[0][len(tag) + 2:]
        out.extend(inner)
        return
    if isinstance(value, Mapping):
        out.append(f"<{tag}>")
        _emit_children(out, value)
        out.append(f"</{tag}>")
    elif isinstance(value, list | tuple):
        if value and _is_pairs(value):
            out.append(f"<{tag}>")
            _emit_children(out, value)
            out.append(f"</{tag}>")
        else:
            for item in value:          # repeated element, one per item
                _emit(out, tag, item)
    else:
        out.append(f"<{tag}>{_scalar(value)}</{tag}>")


def _emit_children(out: list[str], children: Mapping[str, Any] | Sequence[Any]) -> None:
    items = children.items() if isinstance(children, Mapping) else children
    for tag, value in items:
        _emit(out, tag, value)


def to_xml(root: str, children: Sequence[Any] | Mapping[str, Any] | str | None,
           *, xmlns: str | None = S3_NS) -> bytes:
    """Build a response document.

    `children` is a dict or a list of `(tag, value)` pairs. A value is:
    - str / int / float: element text (escaped); bool: "true"/"false"; None: element omitted;
    - a dict or a non-empty list of `(tag, value)` pairs: one element with those children;
      `{}` gives an empty element;
    - any other list (of dicts, scalars or pair lists): one repeated element per item
      (an empty list emits nothing);
    - `Attributed(attributes, value)`: the element of `value` with those attributes.
    A str (or None) as `children` makes it the root's text, e.g. GetBucketLocation.
    """
    attr = f' xmlns="{xmlns}"' if xmlns else ""
    out = [XML_DECL, f"<{root}{attr}>"]
    if isinstance(children, str):
        out.append(escape_text(children))
    elif children is not None:
        _emit_children(out, children)
    out.append(f"</{root}>")
    return "".join(out).encode("utf-8")


def iso8601(ts: float) -> str:
    """Unix seconds -> `2026-11-21T06:14:12.000Z` (the form S3 XML uses).

    Truncated to whole seconds like S3 and like `http_date`, so a listing's LastModified and
    a HEAD's Last-Modified name the same instant (clients compare them).
    """
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(int(ts)))


def http_date(ts: float) -> str:
    """Unix seconds -> RFC 7231 IMF-fixdate, e.g. `Sat, 21 Nov 2026 06:14:12 GMT` (Last-Modified)."""
    return formatdate(int(ts), usegmt=True)
