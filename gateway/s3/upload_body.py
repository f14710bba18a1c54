"""Receiving an object or part body: decode, store as chunks, verify every digest the client sent.

PutObject, UploadPart and UploadPartCopy all end in "bytes in -> WriteResult"; the checks
on the way (declared length, checksum headers or trailers, Content-MD5, the signed payload
SHA-256) are the same, so they live here once. Nothing is committed here: the caller
finalizes with the coordinator only after `receive` returned, so a failed check leaves
nothing visible.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from blob import SUPPORTED_CHECKSUMS, WriteResult
from gateway.s3 import checksum_headers
from gateway.s3.context import S3_MAX_PUT, S3Context
from gateway.s3.errors import S3Error
from gateway.s3.payload import PayloadStream


@dataclass
class Received:
    result: WriteResult
    checksums: dict[str, str]       # algorithm -> base64, the ones stored with the object / part

    @property
    def etag(self) -> str:
        return f'"{self.result.md5_hex}"'


def checksum_algorithm(value: str | None) -> str | None:
    """`x-amz-checksum-algorithm` (CRC32, SHA256, ...) -> our lower-case name, or InvalidRequest."""
    if value is None or value == "":
        return None
    algo = value.strip().lower()
    if algo not in SUPPORTED_CHECKSUMS:
        raise S3Error("InvalidRequest", f"Checksum algorithm {value} is not supported",
                      ArgumentName="x-amz-checksum-algorithm", ArgumentValue=value)
    return algo


async def prepare(ctx: S3Context) -> tuple[object, dict[str, str | None]]:
    """The payload stream and requested checksums, checked before anything is reserved or read."""
    requested = checksum_headers.requested_checksums(ctx.request, checksum_headers.trailer_names(ctx.request))
    stream = ctx.payload()
    length = stream.decoded_length
    chunked = stream.chunked or "chunked" in ctx.headers.get("Transfer-Encoding", "").lower()
    if length is None and not chunked:
        raise S3Error("MissingContentLength")
    if length is not None and length > S3_MAX_PUT:
        raise S3Error("EntityTooLarge", MaxSizeAllowed=str(S3_MAX_PUT), ProposedSize=str(length))
    return stream, requested


async def receive(ctx: S3Context, stream: PayloadStream, requested: dict[str, str | None],
                  extra_algorithms: set[str] | None = None) -> Received:
    """Store the body and verify it; raises BadDigest / XAmzContentSHA256Mismatch / IncompleteBody.

    The stream itself checks the signed payload SHA-256 and chunk signatures when it ends.
    """
    algorithms = set(requested) | (extra_algorithms or set())
    await ctx.send_continue()
    signed = stream.hand_off_payload_hash()
    result = await ctx.state.store.write(ctx.tenant_id, stream, algorithms, request_id=ctx.request_id,
                                         payload_sha256=signed)
    if signed:
        stream.check_payload_sha256(result.checksums["sha256hex"])
    trailers = getattr(stream, "trailers", {}) or {}
    checksum_headers.verify(requested, trailers, result.checksums, result.md5_hex,
                            checksum_headers.content_md5(ctx.request))
    stored = {algo: result.checksums[algo] for algo in algorithms if algo in result.checksums}
    return Received(result, stored)


async def store_iterator(ctx: S3Context, source: AsyncIterator[bytes],
                         algorithms: set[str]) -> Received:
    """Store bytes the gateway produces itself (UploadPartCopy): nothing to verify."""
    result = await ctx.state.store.write(ctx.tenant_id, source, algorithms, request_id=ctx.request_id,
                                         payload_sha256=False)
    return Received(result, {a: result.checksums[a] for a in algorithms if a in result.checksums})
