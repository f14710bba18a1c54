"""Identifiers and name rules: bucket names, object keys, chunk keys, access keys, ETags."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import uuid

from coordinator.errors import error
from coordinator.records import RESERVED_BUCKET_NAMES

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_KEY_BYTES = 1024
_AK_ALPHABET = string.ascii_uppercase + string.digits
_SK_ALPHABET = string.ascii_letters + string.digits + "+/"


def new_id() -> str:
    return uuid.uuid4().hex


def check_bucket_name(name: str) -> None:
    """S3 bucket naming rules; InvalidBucketName (400) otherwise."""
    if not _BUCKET_RE.match(name):
        raise error(
            "InvalidBucketName",
            f"bucket name {name!r} must be 3-63 characters of lowercase "
            "letters, digits, dots and hyphens, starting and ending with a letter or digit",
        )
    if ".." in name or ".-" in name or "-." in name:
        raise error("InvalidBucketName", f"bucket name {name!r} has adjacent dots or a dot next to a hyphen")
    if _IPV4_RE.match(name):
        raise error("InvalidBucketName", f"bucket name {name!r} must not look like an IP address")
    if name in RESERVED_BUCKET_NAMES:
        raise error("InvalidBucketName",
                    f"bucket name {name!r} is reserved (the gateway serves /{name}/ itself)")
    if name.startswith("xn--") or name.endswith("-s3alias"):
        raise error("InvalidBucketName", f"bucket name {name!r} uses a reserved prefix or suffix")


CANNED_ACLS = ("private", "public-read")


def check_acl(acl: str | None) -> str | None:
    """A canned ACL as stored: None stands for private, the default."""
    if acl is None or acl == "private":
        return None
    if acl not in CANNED_ACLS:
        raise error("InvalidArgument", f"canned ACL must be one of {CANNED_ACLS}, got {acl!r}")
    return acl


def check_key(key: str) -> None:
    if not key:
        raise error("InvalidArgument", "object key must not be empty")
    if "\x00" in key:
        raise error("InvalidArgument", "object key must not contain NUL")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise error("InvalidArgument", "object key is not valid UTF-8") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise error("InvalidArgument", f"object key is {len(encoded)} bytes, at most {MAX_KEY_BYTES} allowed")


def check_sha256(value: str) -> None:
    if not _SHA256_RE.match(value):
        raise error("InvalidArgument", f"sha256 must be 64 lowercase hex digits, got {value!r}")


def chunk_key(scope: str, sha256: str) -> str:
    """Primary key of a chunk: sha256_hex(scope + ':' + sha256)."""
    return hashlib.sha256(f"{scope}:{sha256}".encode()).hexdigest()


def new_access_key() -> tuple[str, str]:
    """(access key id: 20 uppercase alphanumerics like AWS, secret: 40 characters)."""
    access = "SB" + "".join(secrets.choice(_AK_ALPHABET) for _ in range(18))
    secret = "".join(secrets.choice(_SK_ALPHABET) for _ in range(40))
    return access, secret


def quote_etag(etag: str) -> str:
    etag = etag.strip()
    return etag if len(etag) >= 2 and etag[0] == etag[-1] == '"' else f'"{etag}"'


def bare_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


def multipart_etag(part_etags: list[str]) -> str:
    """S3's multipart ETag: md5 of the concatenated binary part MD5s, then '-N'."""
    digest = hashlib.md5(b"".join(bytes.fromhex(bare_etag(e)) for e in part_etags), usedforsecurity=False)
    return f'"{digest.hexdigest()}-{len(part_etags)}"'
