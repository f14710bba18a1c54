"""Service- and bucket-level operations: ListBuckets, Create/Head/Delete bucket, bucket subresources,
canned ACLs (of buckets and objects) and object tagging.

Subresources shardbox does not implement (policy, bucket tagging, website, ...) answer what
AWS answers for a bucket that has none configured, so SDK probes and sync tools carry on;
writes to them answer NotImplemented.
"""

from __future__ import annotations

from aiohttp import web

from coordinator.records import CoordinatorError
from gateway.s3 import acl, objmeta, retries, tagging
from gateway.s3.context import S3Context
from gateway.s3.errors import S3Error
from gateway.s3.responses import decode_token, encode_token, int_param, owner, xml_response
from gateway.s3.xmlio import find_text, iso8601, parse_xml


async def list_buckets(ctx: S3Context) -> web.StreamResponse:
    """GET / : the caller's buckets by name, optionally paged (max-buckets, continuation-token)."""
    buckets = sorted(await ctx.state.coordinator.list_buckets(ctx.tenant_id), key=lambda b: b.name)
    prefix = ctx.query.get("prefix") or ""
    if prefix:
        buckets = [b for b in buckets if b.name.startswith(prefix)]
    token = ctx.query.get("continuation-token")
    if token:
        after = decode_token(token)
        buckets = [b for b in buckets if b.name > after]
    paged = "max-buckets" in ctx.query
    limit = int_param(ctx.query, "max-buckets", 10000, low=1, high=10000)
    page, rest = buckets[:limit], buckets[limit:]
    children: list[tuple[str, object]] = [
        ("Owner", owner(ctx.user_id, ctx.auth.key.user_name)),
        ("Buckets", [("Bucket", [("Name", b.name), ("CreationDate", iso8601(b.created_at)),
                                 ("BucketRegion", b.region)]) for b in page] or {}),
    ]
    if paged and rest:
        children.append(("ContinuationToken", encode_token(page[-1].name)))
    if prefix:
        children.append(("Prefix", prefix))
    return xml_response("ListAllMyBucketsResult", children)


async def create_bucket(ctx: S3Context) -> web.StreamResponse:
    """PUT /bucket with an optional CreateBucketConfiguration naming our region."""
    region = ctx.state.cfg.region
    body = await ctx.read_small_body()
    if body.strip():
        doc = parse_xml(body, "CreateBucketConfiguration")
        wanted = find_text(doc, "LocationConstraint")
        if wanted and wanted != region:
            raise S3Error("IllegalLocationConstraintException",
                          f"The {wanted} location constraint is incompatible for the region "
                          f"specific endpoint this request was sent to.", status=400)
    canned = acl.from_headers(ctx.headers)
    try:
        await ctx.state.coordinator.create_bucket(ctx.tenant_id, ctx.user_id, ctx.bucket, region, canned)
    except CoordinatorError as exc:
        # AWS's legacy us-east-1 behaviour: creating a bucket you already own there succeeds.
        if exc.code != "BucketAlreadyOwnedByYou" or region != "us-east-1":
            raise
    return web.Response(status=200, headers={"Location": f"/{ctx.bucket}"})


async def head_bucket(ctx: S3Context) -> web.StreamResponse:
    info = await ctx.state.coordinator.get_bucket(ctx.tenant_id, ctx.bucket)
    return web.Response(status=200, headers={"x-amz-bucket-region": info.region})


async def delete_bucket(ctx: S3Context) -> web.StreamResponse:
    await retries.tolerating_done(ctx, "NoSuchBucket", ctx.state.coordinator.delete_bucket(ctx.tenant_id,
                                                                                          ctx.bucket))
    return web.Response(status=204)


async def get_bucket_location(ctx: S3Context) -> web.StreamResponse:
    info = await ctx.state.coordinator.get_bucket(ctx.tenant_id, ctx.bucket)
    # AWS answers an empty constraint for us-east-1.
    return xml_response("LocationConstraint", "" if info.region == "us-east-1" else info.region)


async def get_acl(ctx: S3Context) -> web.StreamResponse:
    """GetBucketAcl / GetObjectAcl: the owner's FULL_CONTROL, and AllUsers READ if public-read."""
    coordinator = ctx.state.coordinator
    if ctx.key is None:
        info = await coordinator.get_bucket(ctx.tenant_id, ctx.bucket)
        owner_id, canned, headers = info.owner_id, info.acl, {}
    else:
        obj = await coordinator.get_object(ctx.tenant_id, ctx.bucket, ctx.key, version_id=ctx.version_id)
        owner_id, canned, headers = obj.owner_id or ctx.user_id, obj.acl, objmeta.version_headers(obj)
    name = ctx.auth.key.user_name if owner_id == ctx.user_id else owner_id
    return xml_response("AccessControlPolicy", acl.policy(owner_id, name, canned), headers=headers)


async def put_acl(ctx: S3Context) -> web.StreamResponse:
    """PutBucketAcl / PutObjectAcl: a canned ACL header, or a policy document equal to one."""
    if "x-amz-acl" in ctx.headers:
        canned = acl.from_headers(ctx.headers)
    else:
        canned = acl.from_policy_xml(await ctx.read_small_body())
    coordinator = ctx.state.coordinator
    if ctx.key is None:
        await coordinator.set_bucket_acl(ctx.tenant_id, ctx.bucket, canned or "private")
        ctx.state.forget_bucket(ctx.tenant_id, ctx.bucket)
        return web.Response(status=200)
    obj = await coordinator.set_object_acl(ctx.tenant_id, ctx.bucket, ctx.key, ctx.version_id,
                                           canned or "private")
    return web.Response(status=200, headers=objmeta.version_headers(obj))


async def get_object_tagging(ctx: S3Context) -> web.StreamResponse:
    obj = await ctx.state.coordinator.get_object(ctx.tenant_id, ctx.bucket, ctx.key,
                                                 version_id=ctx.version_id)
    return xml_response("Tagging", tagging.to_xml(obj.tags), headers=objmeta.version_headers(obj))


async def put_object_tagging(ctx: S3Context) -> web.StreamResponse:
    tags = tagging.from_xml(await ctx.read_small_body())
    obj = await ctx.state.coordinator.set_object_tags(ctx.tenant_id, ctx.bucket, ctx.key, ctx.version_id,
                                                      tags)
    return web.Response(status=200, headers=objmeta.version_headers(obj))


async def delete_object_tagging(ctx: S3Context) -> web.StreamResponse:
    obj = await ctx.state.coordinator.set_object_tags(ctx.tenant_id, ctx.bucket, ctx.key, ctx.version_id,
                                                      None)
    return web.Response(status=204, headers=objmeta.version_headers(obj))


async def get_bucket_logging(ctx: S3Context) -> web.StreamResponse:
    await ctx.state.coordinator.get_bucket(ctx.tenant_id, ctx.bucket)
    return xml_response("BucketLoggingStatus", None)


async def get_request_payment(ctx: S3Context) -> web.StreamResponse:
    await ctx.state.coordinator.get_bucket(ctx.tenant_id, ctx.bucket)
    return xml_response("RequestPaymentConfiguration", [("Payer", "BucketOwner")])


# subresource -> (code, message) AWS answers on GET when the bucket has none configured
NOT_CONFIGURED = {
    "policy": ("NoSuchBucketPolicy", "The bucket policy does not exist"),
    "tagging": ("NoSuchTagSet", "The TagSet does not exist"),
    "website": ("NoSuchWebsiteConfiguration", "The specified bucket does not have a website configuration"),
    "encryption": ("ServerSideEncryptionConfigurationNotFoundError",
                   "The server side encryption configuration was not found"),
    "object-lock": ("ObjectLockConfigurationNotFoundError",
                    "Object Lock configuration does not exist for this bucket"),
    "replication": ("ReplicationConfigurationNotFoundError", "The replication configuration was not found"),
    "ownershipControls": ("OwnershipControlsNotFoundError", "The bucket ownership controls were not found"),
    "publicAccessBlock": ("NoSuchPublicAccessBlockConfiguration",
                          "The public access block configuration was not found"),
}


def not_configured(subresource: str):
    """A GET handler answering the 404 AWS gives for an unconfigured `subresource`."""
    code, message = NOT_CONFIGURED[subresource]

    async def handler(ctx: S3Context) -> web.StreamResponse:
        await ctx.state.coordinator.get_bucket(ctx.tenant_id, ctx.bucket)
        raise S3Error(code, message, status=404, BucketName=ctx.bucket)

    handler.__name__ = f"get_bucket_{subresource.replace('-', '_')}"
    return handler
