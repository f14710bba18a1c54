"""CORS: a bucket's rules (Put/Get/DeleteBucketCors), preflight answers (OPTIONS) and the
headers of actual cross-origin requests, as S3 evaluates them.

A web application on another origin uploads straight from the browser with presigned URLs
(or a presigned POST form); the browser first asks `OPTIONS` whether the method and headers
are allowed, then reads the answer of the real request only if it carries
`Access-Control-Allow-Origin`. Both come from the first rule that matches the request's
origin, method and (for a preflight) headers; origins and headers may hold one `*` wildcard.

Preflights carry no credentials, so the bucket is looked up by name; a bucket that does not
exist answers like one without CORS rules (403), revealing nothing about other tenants.
Rules are stored as the coordinator keeps them (BucketInfo.cors): a list of dicts with
`id`, `allowed_origins`, `allowed_methods`, `allowed_headers`, `expose_headers`, `max_age`.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from coordinator.records import BucketInfo, CoordinatorError
from gateway.s3.context import GatewayState, S3Context
from gateway.s3.errors import S3Error
from gateway.s3.responses import xml_response
from gateway.s3.xmlio import find_all, find_text, parse_xml

METHODS = ("GET", "PUT", "HEAD", "POST", "DELETE")
MAX_RULES = 100
_FORBIDDEN = "This CORS request is not allowed. This is usually because the evalution of Origin, request " \
             "method / Access-Control-Request-Method or Access-Control-Request-Headers are not " \
             "whitelisted by the resource's CORS spec."


def _wildcard(pattern: str, what: str) -> None:
    if pattern.count("*") > 1:
        raise S3Error("InvalidRequest", f"{what} \"{pattern}\" can not have more than one wildcard.")


def parse(body: bytes) -> list[dict[str, Any]]:
    """A PutBucketCors document as stored rules; InvalidRequest / MalformedXML as S3 answers."""
    doc = parse_xml(body, "CORSConfiguration")
    rules = []
    for el in find_all(doc, "CORSRule"):
        origins = [(o.text or "").strip() for o in find_all(el, "AllowedOrigin")]
        methods = [(m.text or "").strip() for m in find_all(el, "AllowedMethod")]
        headers = [(h.text or "").strip() for h in find_all(el, "AllowedHeader")]
        if not origins or not methods:
            raise S3Error("MalformedXML")
        for m in methods:
            if m not in METHODS:
                raise S3Error("InvalidRequest", f"Found unsupported HTTP method in CORS config. "
                              f"Unsupported method is {m}")
        for o in origins:
            _wildcard(o, "AllowedOrigin")
        for h in headers:
            _wildcard(h, "AllowedHeader")
        max_age = find_text(el, "MaxAgeSeconds")
        try:
            age = int(max_age) if max_age not in (None, "") else None
        except ValueError:
            raise S3Error("MalformedXML") from None
        rules.append({
            "id": find_text(el, "ID"),
            "allowed_origins": origins,
            "allowed_methods": methods,
            "allowed_headers": headers,
            "expose_headers": [(h.text or "").strip() for h in find_all(el, "ExposeHeader")],
            "max_age": age,
        })
    if not rules or len(rules) > MAX_RULES:
        raise S3Error("MalformedXML" if not rules else "InvalidRequest",
                      None if not rules else f"A CORS configuration may hold at most {MAX_RULES} rules")
    return rules


def to_xml(rules: list[dict[str, Any]]) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for r in rules:
        item: list[tuple[str, object]] = []
        if r.get("id"):
            item.append(("ID", r["id"]))
        item += [("AllowedHeader", h) for h in r.get("allowed_headers") or []]
        item += [("AllowedMethod", m) for m in r["allowed_methods"]]
        item += [("AllowedOrigin", o) for o in r["allowed_origins"]]
        item += [("ExposeHeader", h) for h in r.get("expose_headers") or []]
        if r.get("max_age") is not None:
            item.append(("MaxAgeSeconds", r["max_age"]))
        out.append(("CORSRule", item))
    return out


def _matches(pattern: str, value: str, *, fold: bool) -> bool:
    if fold:
        pattern, value = pattern.lower(), value.lower()
    if "*" not in pattern:
        return pattern == value
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), value, re.DOTALL) is not None


def match(rules: list[dict[str, Any]] | None, origin: str, method: str,
          request_headers: list[str] | None = None) -> dict[str, Any] | None:
    """The first rule allowing `origin`, `method` and every one of `request_headers`."""
    for rule in rules or []:
        if not any(_matches(o, origin, fold=False) for o in rule["allowed_origins"]):
            continue
        if method not in rule["allowed_methods"]:
            continue
        allowed = rule.get("allowed_headers") or []
        if all(any(_matches(a, h, fold=True) for a in allowed) for h in request_headers or []):
            return rule
    return None


def allow_headers(rule: dict[str, Any], origin: str) -> dict[str, str]:
    """The Access-Control-* headers a matching rule gives an actual request or a preflight."""
    wildcard = "*" in rule["allowed_origins"]
    out = {
        "Access-Control-Allow-Origin": "*" if wildcard else origin,
        "Access-Control-Allow-Methods": ", ".join(rule["allowed_methods"]),
        "Vary": "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    }
    if not wildcard:
        out["Access-Control-Allow-Credentials"] = "true"
    if rule.get("expose_headers"):
        out["Access-Control-Expose-Headers"] = ", ".join(rule["expose_headers"])
    if rule.get("max_age") is not None:
        out["Access-Control-Max-Age"] = str(rule["max_age"])
    return out


async def bucket_by_name(state: GatewayState, name: str) -> BucketInfo | None:
    """The bucket whoever owns it, or None if there is none (never an error the client sees)."""
    assert state.public_buckets is not None
    try:
        return await state.public_buckets.lookup(name)
    except CoordinatorError as exc:
        if exc.code == "NoSuchBucket":
            return None
        raise


async def actual_request_headers(state: GatewayState, bucket: str, request: web.Request) -> dict[str, str]:
    """CORS headers for a request that carries `Origin` (empty when no rule allows it)."""
    origin = request.headers.get("Origin")
    if not origin:
        return {}
    info = await bucket_by_name(state, bucket)
    rule = match(info.cors if info else None, origin, request.method.upper())
    return allow_headers(rule, origin) if rule else {}


async def preflight(ctx: S3Context) -> web.StreamResponse:
    """OPTIONS: 200 with the Access-Control-* headers of the first matching rule, else 403."""
    origin = ctx.headers.get("Origin")
    method = ctx.headers.get("Access-Control-Request-Method")
    if not origin or not method:
        raise S3Error("BadRequest", "Insufficient information. Origin request header needed." if not origin
                      else "Invalid Access-Control-Request-Method: null", status=400)
    info = await bucket_by_name(ctx.state, ctx.bucket) if ctx.bucket else None
    if info is None or not info.cors:
        raise S3Error("AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.", status=403,
                      Method=method, ResourceType="BUCKET" if ctx.key is None else "OBJECT")
    asked = ctx.headers.get("Access-Control-Request-Headers", "")
    wanted = [h.strip() for h in asked.split(",") if h.strip()]
    rule = match(info.cors, origin, method.strip(), wanted)
    if rule is None:
        raise S3Error("AccessForbidden", f"CORSResponse: {_FORBIDDEN}", status=403, Method=method,
                      ResourceType="BUCKET" if ctx.key is None else "OBJECT")
    headers = allow_headers(rule, origin)
    if wanted:
        headers["Access-Control-Allow-Headers"] = ", ".join(wanted)
    return web.Response(status=200, headers=headers)


async def get_bucket_cors(ctx: S3Context) -> web.StreamResponse:
    info = await ctx.state.coordinator.get_bucket(ctx.tenant_id, ctx.bucket)
    if not info.cors:
        raise S3Error("NoSuchCORSConfiguration", "The CORS configuration does not exist", status=404,
                      BucketName=ctx.bucket)
    return xml_response("CORSConfiguration", to_xml(info.cors))


async def put_bucket_cors(ctx: S3Context) -> web.StreamResponse:
    rules = parse(await ctx.read_small_body())
    await ctx.state.coordinator.set_bucket_cors(ctx.tenant_id, ctx.bucket, rules)
    ctx.state.forget_bucket(ctx.tenant_id, ctx.bucket)
    return web.Response(status=200)


async def delete_bucket_cors(ctx: S3Context) -> web.StreamResponse:
    await ctx.state.coordinator.set_bucket_cors(ctx.tenant_id, ctx.bucket, None)
    ctx.state.forget_bucket(ctx.tenant_id, ctx.bucket)
    return web.Response(status=204)
