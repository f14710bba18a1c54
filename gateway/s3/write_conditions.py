"""Conditional writes: `If-None-Match: *` (create only) and `If-Match: ETag` on PutObject and
CompleteMultipartUpload.

Judged twice, as S3 does: once before the body is taken, so a write bound to fail is
refused without uploading anything, and again by the coordinator inside the commit's
transaction, under the key's lock (coordinator.records.WriteCondition), so that of two
racing create-only writes exactly one wins; the other gets 412 PreconditionFailed.
"""

from __future__ import annotations

from coordinator.records import CoordinatorError, ObjectInfo, WriteCondition
from gateway.s3.conditions import Conditions, Outcome
from gateway.s3.context import S3Context
from gateway.s3.errors import S3Error


async def write_condition(ctx: S3Context, early: bool = True) -> WriteCondition | None:
    """The request's precondition (None without one), after refusing it early if it fails now.

    CompleteMultipartUpload passes early=False: it has no body to spare, and a retry of one
    that succeeded (its answer lost) must reach the coordinator, which answers the same
    success, instead of failing its own precondition against the object it created."""
    if_none = ctx.headers.get("If-None-Match")
    if_match = ctx.headers.get("If-Match")
    if if_none is None and if_match is None:
        return None
    if if_none is not None and if_none.strip() != "*":
        raise S3Error("NotImplemented", "If-None-Match on writes only supports *", status=501)
    if not early:
        return WriteCondition(if_none_match=if_none is not None, if_match=if_match)
    try:
        current: ObjectInfo | None = await ctx.state.coordinator.get_object(
            ctx.tenant_id, ctx.bucket, ctx.key)
    except CoordinatorError as exc:
        if exc.code != "NoSuchKey":
            raise
        current = None
    if if_none is not None and current is not None:
        raise S3Error("PreconditionFailed", Condition="If-None-Match")
    if if_match is not None:
        if current is None:
            raise S3Error("NoSuchKey", resource=ctx.resource)
        if Conditions(if_match=if_match).evaluate(current.etag, current.last_modified) is not Outcome.PROCEED:
            raise S3Error("PreconditionFailed", Condition="If-Match")
    return WriteCondition(if_none_match=if_none is not None, if_match=if_match)
