"""Canned ACLs: `private` and `public-read`, on buckets and objects.

shardbox has one owner per bucket (its tenant), so of S3's access control lists only two
states mean anything: private, and readable by anyone without signing. A `public-read`
bucket may be listed (ListObjects, HeadBucket) anonymously; a `public-read` object may be
read (GET, HEAD) anonymously (gateway/s3/public.py enforces both). The canned ACLs that
only name the owner are accepted as private; grants to other principals are not offered.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.s3.errors import S3Error
from gateway.s3.responses import owner
from gateway.s3.xmlio import Attributed, find, find_all, find_text, local_name, parse_xml

PUBLIC_READ = "public-read"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
# Canned ACLs that grant nothing beyond the owner's full control: private for shardbox.
_OWNER_ONLY = {"private", "bucket-owner-read", "bucket-owner-full-control"}
_GRANT_HEADERS = ("x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-read-acp", "x-amz-grant-write-acp",
                  "x-amz-grant-full-control")


def canned(value: str) -> str | None:
    """The stored form of a canned ACL name: None (private) or "public-read"."""
    if value in _OWNER_ONLY:
        return None
    if value == PUBLIC_READ:
        return PUBLIC_READ
    raise S3Error("NotImplemented", f"The canned ACL {value} is not supported; shardbox offers private "
                  "and public-read", status=501)


def from_headers(headers: Mapping[str, str]) -> str | None:
    """`x-amz-acl` of a write request (None: private); explicit grant headers are not offered."""
    for name in _GRANT_HEADERS:
        if name in headers:
            raise S3Error("NotImplemented", f"{name} is not supported; use x-amz-acl private or public-read",
                          status=501)
    value = headers.get("x-amz-acl")
    return None if value is None else canned(value.strip())


def from_policy_xml(body: bytes) -> str | None:
    """A PutBucketAcl / PutObjectAcl body: the owner's FULL_CONTROL, optionally AllUsers READ."""
    doc = parse_xml(body, "AccessControlPolicy")
    acl = find(doc, "AccessControlList")
    if acl is None:
        raise S3Error("MalformedXML")
    public = False
    for grant in find_all(acl, "Grant"):
        grantee, permission = find(grant, "Grantee"), (find_text(grant, "Permission") or "").strip()
        if grantee is None:
            raise S3Error("MalformedXML")
        kind = next((v for k, v in grantee.attrib.items() if local_name(k) == "type"), "")
        uri = (find_text(grantee, "URI") or "").strip()
        if kind == "CanonicalUser" and permission == "FULL_CONTROL":
            continue
        if kind == "Group" and uri == ALL_USERS and permission == "READ":
            public = True
            continue
        raise S3Error("NotImplemented", "Only the owner's FULL_CONTROL and AllUsers READ grants are "
                      "supported (the private and public-read canned ACLs)", status=501)
    return PUBLIC_READ if public else None


def policy(owner_id: str, owner_name: str, acl: str | None) -> list[tuple[str, object]]:
    """The children of a GetBucketAcl / GetObjectAcl answer."""
    who = owner(owner_id, owner_name)
    grants: list[tuple[str, object]] = [
        ("Grant", [("Grantee", Attributed({"xmlns:xsi": _XSI, "xsi:type": "CanonicalUser"}, who)),
                   ("Permission", "FULL_CONTROL")])]
    if acl == PUBLIC_READ:
        grants.append(("Grant", [("Grantee", Attributed({"xmlns:xsi": _XSI, "xsi:type": "Group"},
                                                        [("URI", ALL_USERS)])),
                                 ("Permission", "READ")]))
    return [("Owner", who), ("AccessControlList", grants)]
