"""Storage tiers on the S3 surface: lifecycle configuration, RestoreObject, the COLD gate.

An object whose storage class maps to the COLD tier (GLACIER, DEEP_ARCHIVE, COLD; see
config/tiers.py) answers GET and copy with 403 InvalidObjectState until a RestoreObject has
brought it back (`x-amz-restore: ongoing-request="false", expiry-date="..."`), as S3 does;
HEAD always answers and shows the restore's progress. The lifecycle documents are S3's XML
(Put/Get/DeleteBucketLifecycleConfiguration); the coordinator checks the rules
(coordinator/lifecycle.py) and the worker's lifecycle pass applies them.
"""

from __future__ import annotations

import calendar
import time
from xml.etree.ElementTree import Element

from aiohttp import web

from config.tiers import COLD, storage_tier
from coordinator.records import LifecycleRule, LifecycleTransition, ObjectInfo
from gateway.s3.context import S3Context
from gateway.s3.errors import S3Error
from gateway.s3.responses import xml_response
from gateway.s3.xmlio import find, find_all, find_text, http_date, parse_xml


def check_restored(obj: ObjectInfo) -> None:
    """GET and copy of a COLD object need a finished restore."""
    if storage_tier(obj.storage_class) == COLD and obj.restore != "done":
        raise S3Error(
            "InvalidObjectState",
            "The operation is not valid for the object's storage class",
            StorageClass=obj.storage_class,
        )


def restore_header(obj: ObjectInfo) -> dict[str, str]:
    """`x-amz-restore` for an object with a restore requested or done (HEAD and GET)."""
    if obj.restore == "ongoing":
        return {"x-amz-restore": 'ongoing-request="true"'}
    if obj.restore == "done" and obj.restore_expires_at is not None:
        return {
            "x-amz-restore": f'ongoing-request="false", expiry-date="{http_date(obj.restore_expires_at)}"'
        }
    return {}


# ---- RestoreObject ----------------------------------------------------------------------------


async def restore_object(ctx: S3Context) -> web.StreamResponse:
    """POST /bucket/key?restore with <RestoreRequest><Days>N</Days>...: 202 started, 200 restored."""
    doc = parse_xml(await ctx.read_small_body(), "RestoreRequest")
    days = _int(find_text(doc, "Days"), "Days", low=1)
    if days is None:
        raise S3Error("MalformedXML", "RestoreRequest needs Days")
    outcome = await ctx.state.coordinator.restore_object(
        ctx.tenant_id, ctx.bucket, ctx.key, days, version_id=ctx.query.get("versionId") or None
    )
    return web.Response(status=202 if outcome == "started" else 200)


# ---- lifecycle configuration ------------------------------------------------------------------


async def put_lifecycle(ctx: S3Context) -> web.StreamResponse:
    doc = parse_xml(await ctx.read_small_body(), "LifecycleConfiguration")
    rules = [_rule(el) for el in find_all(doc, "Rule")]
    if not rules:
        raise S3Error("MalformedXML", "a LifecycleConfiguration needs at least one Rule")
    await ctx.state.coordinator.put_bucket_lifecycle(ctx.tenant_id, ctx.bucket, rules)
    return web.Response(status=200)


async def get_lifecycle(ctx: S3Context) -> web.StreamResponse:
    rules = await ctx.state.coordinator.get_bucket_lifecycle(ctx.tenant_id, ctx.bucket)
    return xml_response("LifecycleConfiguration", [("Rule", _rule_xml(r)) for r in rules])


async def delete_lifecycle(ctx: S3Context) -> web.StreamResponse:
    await ctx.state.coordinator.delete_bucket_lifecycle(ctx.tenant_id, ctx.bucket)
    return web.Response(status=204)


def _int(text: str | None, what: str, low: int = 0) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not text.isdigit() or len(text) > 12 or int(text) < low:
        raise S3Error(
            "InvalidArgument",
            f"{what} must be an integer of at least {low}",
            ArgumentName=what,
            ArgumentValue=text[:64],
        )
    return int(text)


def _date(text: str) -> float:
    """An ISO 8601 date at midnight UTC (S3 accepts `2030-01-01` and `2030-01-01T00:00:00Z`)."""
    value = text.strip()
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"):
        try:
            parsed = time.strptime(value.replace("+00:00", "+0000"), fmt)
        except ValueError:
            continue
        if parsed.tm_hour or parsed.tm_min or parsed.tm_sec:
            raise S3Error(
                "InvalidArgument",
                "'Date' must be at midnight GMT",
                ArgumentName="Date",
                ArgumentValue=value[:64],
            )
        return float(calendar.timegm(parsed))
    raise S3Error(
        "InvalidArgument", "'Date' must be an ISO 8601 date", ArgumentName="Date", ArgumentValue=value[:64]
    )


def _filter(rule: LifecycleRule, el: Element) -> None:
    """<Filter> with one of Prefix / Tag / ObjectSize* / And{...}."""
    parts = [el]
    both = find(el, "And")
    if both is not None:
        parts.append(both)
    for part in parts:
        prefix = find_text(part, "Prefix")
        if prefix is not None:
            rule.prefix = prefix
        for tag in find_all(part, "Tag"):
            name, value = find_text(tag, "Key"), find_text(tag, "Value")
            if not name:
                raise S3Error("MalformedXML", "a lifecycle Tag needs a Key")
            rule.tags[name] = value or ""
        above = _int(find_text(part, "ObjectSizeGreaterThan"), "ObjectSizeGreaterThan")
        below = _int(find_text(part, "ObjectSizeLessThan"), "ObjectSizeLessThan")
        if above is not None:
            rule.size_greater_than = above
        if below is not None:
            rule.size_less_than = below


def _rule(el: Element) -> LifecycleRule:
    status = find_text(el, "Status")
    if status not in ("Enabled", "Disabled"):
        raise S3Error("MalformedXML", "a lifecycle Rule needs Status Enabled or Disabled")
    rule = LifecycleRule(id=find_text(el, "ID") or "", enabled=status == "Enabled")
    legacy = find_text(el, "Prefix")
    if legacy is not None:
        rule.prefix = legacy
    flt = find(el, "Filter")
    if flt is not None:
        _filter(rule, flt)
    for t in find_all(el, "Transition"):
        if find_text(t, "Date") is not None:
            raise S3Error("NotImplemented", "Transition by Date is not supported; use Days", status=501)
        days = _int(find_text(t, "Days"), "Days")
        klass = (find_text(t, "StorageClass") or "").strip()
        if days is None or not klass:
            raise S3Error("MalformedXML", "a Transition needs Days and StorageClass")
        rule.transitions.append(LifecycleTransition(days, klass))
    exp = find(el, "Expiration")
    if exp is not None:
        rule.expiration_days = _int(find_text(exp, "Days"), "Days", low=1)
        date = find_text(exp, "Date")
        if date is not None:
            rule.expiration_date = _date(date)
        rule.expired_object_delete_marker = (
            find_text(exp, "ExpiredObjectDeleteMarker") or ""
        ).strip() == "true"
    nce = find(el, "NoncurrentVersionExpiration")
    if nce is not None:
        rule.noncurrent_days = _int(find_text(nce, "NoncurrentDays"), "NoncurrentDays", low=1)
        rule.newer_noncurrent_versions = _int(
            find_text(nce, "NewerNoncurrentVersions"), "NewerNoncurrentVersions", low=1
        )
    abort = find(el, "AbortIncompleteMultipartUpload")
    if abort is not None:
        rule.abort_multipart_days = _int(
            find_text(abort, "DaysAfterInitiation"), "DaysAfterInitiation", low=1
        )
    return rule


def _rule_xml(r: LifecycleRule) -> list[tuple[str, object]]:
    conditions: list[tuple[str, object]] = []
    if r.prefix:
        conditions.append(("Prefix", r.prefix))
    conditions += [("Tag", [("Key", k), ("Value", v)]) for k, v in sorted(r.tags.items())]
    if r.size_greater_than is not None:
        conditions.append(("ObjectSizeGreaterThan", r.size_greater_than))
    if r.size_less_than is not None:
        conditions.append(("ObjectSizeLessThan", r.size_less_than))
    if len(conditions) > 1:
        flt: object = [("And", conditions)]
    else:
        flt = conditions or [("Prefix", "")]   # what S3 shows for a rule that filters nothing
    out: list[tuple[str, object]] = [
        ("ID", r.id or None),
        ("Filter", flt),
        ("Status", "Enabled" if r.enabled else "Disabled"),
    ]
    out += [("Transition", [("Days", t.days), ("StorageClass", t.storage_class)]) for t in r.transitions]
    expiration: list[tuple[str, object]] = []
    if r.expiration_days is not None:
        expiration.append(("Days", r.expiration_days))
    if r.expiration_date is not None:
        expiration.append(("Date", time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(r.expiration_date))))
    if r.expired_object_delete_marker:
        expiration.append(("ExpiredObjectDeleteMarker", True))
    if expiration:
        out.append(("Expiration", expiration))
    if r.noncurrent_days is not None:
        nce: list[tuple[str, object]] = [("NoncurrentDays", r.noncurrent_days)]
        if r.newer_noncurrent_versions is not None:
            nce.append(("NewerNoncurrentVersions", r.newer_noncurrent_versions))
        out.append(("NoncurrentVersionExpiration", nce))
    if r.abort_multipart_days is not None:
        out.append(("AbortIncompleteMultipartUpload", [("DaysAfterInitiation", r.abort_multipart_days)]))
    return out
