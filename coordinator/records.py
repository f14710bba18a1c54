"""Records exchanged between the coordinator and its clients (the gateway).

These dataclasses are the wire contract of the coordinator's internal API: the server
serialises them with `to_json`, `CoordinatorClient` rebuilds them with `from_json`.
`CoordinatorAPI` lists every call the gateway may make; the client implements it and
the server exposes one endpoint per method.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

MAX_TOUCH_BATCH = 10_000  # versions per touch_objects call (the server refuses more)


class CoordinatorError(Exception):
    """An error answer from the coordinator, with its S3-style code and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def to_json(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_json(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    return obj


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def from_json(cls: type[T], data: dict[str, Any]) -> T:
    """Build a (possibly nested) record; unknown keys are ignored for forward compatibility."""
    kwargs = {}
    for name in _field_names(cls):
        if name not in data:
            continue
        value = data[name]
        sub = _NESTED.get((cls.__name__, name))
        if sub is not None and value is not None:
            value = [from_json(sub, v) for v in value] if isinstance(value, list) else from_json(sub, value)
        kwargs[name] = value
    return cls(**kwargs)


@dataclass
class NodeInfo:
    node_id: str
    address: str                 # base URL, e.g. http://127.0.0.1:9101
    pool: str = "hot"
    host: str | None = None
    rack: str | None = None
    capacity_bytes: int = 0
    free_bytes: int = 0
    used_bytes: int = 0
    shard_count: int = 0
    state: str = "up"            # up | down
    last_seen: float = 0.0


@dataclass
class KeyInfo:
    access_key: str
    secret_key: str
    user_id: str
    user_name: str
    tenant_id: str
    is_admin: bool = False


@dataclass
class BucketInfo:
    name: str
    tenant_id: str
    owner_id: str
    created_at: float
    region: str = "us-east-1"


@dataclass
class ShardPlacement:
    index: int                   # 0..13
    node_id: str
    address: str                 # node base URL (filled by the coordinator from the registry)
    checksum: str | None = None  # xxh3-128 hex of the shard, once written


@dataclass
class ChunkPlan:
    """Answer of place_chunks for one chunk: where to write it, or that it already exists."""

    sha256: str
    chunk_key: str
    exists: bool
    shards: list[ShardPlacement] = field(default_factory=list)


@dataclass
class ChunkRef:
    """One stored chunk as part of an object or part, in order."""

    sha256: str
    chunk_key: str
    size: int                    # plaintext bytes
    enc_size: int                # ciphertext + tag bytes that were erasure coded
    key_id: str
    shards: list[ShardPlacement] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)   # shard indexes not acknowledged (repair)
    offset: int = 0              # byte offset of this chunk within the object (reads)
    # base64 of the chunk's ciphertext (enc_size bytes) when the chunk is kept in the
    # metadata database instead of as shards; then shards == [] (small objects, one RPC).
    inline: str | None = None


@dataclass
class PartInfo:
    part_number: int
    size: int
    etag: str                    # quoted MD5 hex of the part, as S3 shows it
    last_modified: float = 0.0
    offset: int = 0              # within the completed object
    checksums: dict[str, str] = field(default_factory=dict)


@dataclass
class UploadInfo:
    upload_id: str
    bucket: str
    key: str
    tenant_id: str
    owner_id: str
    kind: str                    # put | multipart
    initiated: float
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)   # cache-control, content-disposition, ...
    storage_class: str = "STANDARD"
    checksum_algorithm: str | None = None


@dataclass
class ObjectInfo:
    bucket: str
    key: str
    version_id: str
    tenant_id: str
    size: int
    etag: str                    # quoted, as S3 shows it
    last_modified: float
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    storage_class: str = "STANDARD"
    status: str = "ready"
    checksums: dict[str, str] = field(default_factory=dict)  # e.g. {"crc32": base64}
    parts: list[PartInfo] = field(default_factory=list)      # multipart objects only
    chunks: list[ChunkRef] = field(default_factory=list)     # only when asked with_chunks


@dataclass
class ListEntry:
    key: str
    size: int
    etag: str
    last_modified: float
    storage_class: str = "STANDARD"
    owner_id: str = ""


@dataclass
class ListResult:
    contents: list[ListEntry] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)
    is_truncated: bool = False
    next_marker: str | None = None   # last key or common prefix returned, when truncated


@dataclass
class UploadList:
    uploads: list[UploadInfo] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)
    is_truncated: bool = False
    next_key_marker: str | None = None
    next_upload_id_marker: str | None = None


@dataclass
class PartList:
    parts: list[PartInfo] = field(default_factory=list)
    is_truncated: bool = False
    next_part_number_marker: int | None = None


@dataclass
class DeleteResult:
    key: str
    deleted: bool
    error_code: str | None = None
    error_message: str | None = None


_NESTED: dict[tuple[str, str], type] = {
    ("ChunkPlan", "shards"): ShardPlacement,
    ("ChunkRef", "shards"): ShardPlacement,
    ("ObjectInfo", "parts"): PartInfo,
    ("ObjectInfo", "chunks"): ChunkRef,
    ("ListResult", "contents"): ListEntry,
    ("UploadList", "uploads"): UploadInfo,
    ("PartList", "parts"): PartInfo,
}


@dataclass(frozen=True)
class WriteCondition:
    """A conditional write's precondition on the key's current version (S3 `If-None-Match: *`
    and `If-Match: ETag` on PutObject and CompleteMultipartUpload). The gateway checks it
    before taking the body, to refuse early; the coordinator checks it again inside the
    commit's transaction, under the key's lock, so of two racing create-only writes
    exactly one succeeds."""

    if_none_match: bool = False      # the key must have no current version
    if_match: str | None = None      # the current version's ETag must be this one ("*": any)


class CoordinatorAPI(Protocol):
    """Every call the gateway makes. Times are unix seconds (float). Raise CoordinatorError."""

    # identity
    async def get_key(self, access_key: str) -> KeyInfo: ...            # InvalidAccessKeyId 403
    # nodes and placement
    async def list_nodes(self) -> list[NodeInfo]: ...
    async def place_chunks(self, tenant_id: str, chunks: list[tuple[str, int]]) -> list[ChunkPlan]: ...
    #   chunks: (sha256 hex, plaintext size); answers in the same order
    async def report_shard_failure(self, chunk_key: str, index: int, node_id: str, reason: str) -> None: ...
    # buckets
    async def create_bucket(self, tenant_id: str, owner_id: str, name: str, region: str) -> BucketInfo: ...
    async def get_bucket(self, tenant_id: str, name: str) -> BucketInfo: ...   # NoSuchBucket
    async def list_buckets(self, tenant_id: str) -> list[BucketInfo]: ...
    async def delete_bucket(self, tenant_id: str, name: str) -> None: ...     # BucketNotEmpty
    # single PUT and multipart share upload sessions
    async def begin_upload(self, tenant_id: str, owner_id: str, bucket: str, key: str, kind: str,
                           reserve_bytes: int, content_type: str | None, metadata: dict[str, str],
                           headers: dict[str, str], storage_class: str,
                           checksum_algorithm: str | None) -> UploadInfo: ...
    #   NoSuchBucket, QuotaExceeded (reserve_bytes is reserved against the tenant quota)
    async def finalize_put(self, upload_id: str, size: int, etag: str, chunks: list[ChunkRef],
                           checksums: dict[str, str],
                           condition: WriteCondition | None = None) -> ObjectInfo: ...
    #   one transaction: chunk upserts (refcount+1), object version (replacing the previous
    #   one of that key, whose chunks lose a reference), audit, outbox, quota reserved->used
    async def put_object(self, tenant_id: str, owner_id: str, bucket: str, key: str, size: int, etag: str,
                         content_type: str | None, metadata: dict[str, str], headers: dict[str, str],
                         storage_class: str, chunks: list[ChunkRef],
                         checksums: dict[str, str],
                         condition: WriteCondition | None = None) -> ObjectInfo: ...
    #   finalize_put without a session, in one transaction: NoSuchBucket / AccessDenied,
    #   QuotaExceeded unless used + reserved + size - size of the replaced version <= quota
    #   (then nothing changes); chunks usually one inline ChunkRef (small objects)
    async def abort_upload(self, tenant_id: str, bucket: str, upload_id: str) -> None: ...  # NoSuchUpload
    async def get_upload(self, tenant_id: str, bucket: str, key: str, upload_id: str) -> UploadInfo: ...
    async def put_part(self, tenant_id: str, bucket: str, key: str, upload_id: str, part_number: int,
                       size: int, etag: str, chunks: list[ChunkRef],
                       checksums: dict[str, str]) -> PartInfo: ...
    async def list_parts(self, tenant_id: str, bucket: str, key: str, upload_id: str,
                         max_parts: int, part_number_marker: int) -> PartList: ...
    async def list_uploads(self, tenant_id: str, bucket: str, prefix: str, delimiter: str | None,
                           key_marker: str | None, upload_id_marker: str | None,
                           max_uploads: int) -> UploadList: ...
    async def complete_upload(self, tenant_id: str, bucket: str, key: str, upload_id: str,
                              parts: list[tuple[int, str]],
                              condition: WriteCondition | None = None) -> ObjectInfo: ...
    #   parts: (part_number, etag as the client sent it); InvalidPart, InvalidPartOrder,
    #   EntityTooSmall (every part but the last >= 5 MiB), NoSuchUpload; ETag = md5-of-md5s-N
    # finalize_put, put_object, complete_upload with a condition that does not hold:
    #   PreconditionFailed (412), or NoSuchKey for If-Match on a key with no current version;
    #   nothing changes (the session stays until aborted or expired)
    # objects
    async def get_object(self, tenant_id: str, bucket: str, key: str, version_id: str | None = None,
                         with_chunks: bool = False, range_start: int | None = None,
                         range_end: int | None = None, range_suffix: int | None = None,
                         part_number: int | None = None) -> ObjectInfo: ...   # NoSuchBucket, NoSuchKey
    #   with_chunks and one narrowing of the read: a byte range (inclusive offsets; either may
    #   be None = from 0 / to the end; the end may lie past the object), the last range_suffix
    #   bytes, or the part_number-th part (by position; a non-multipart object is part 1):
    #   only the ChunkRefs overlapping those bytes, with absolute offsets (none if they select
    #   no byte); parts and everything else as without it.
    #   InvalidArgument if start < 0, end < start, suffix < 0, part_number < 1 or more than one
    async def list_objects(self, tenant_id: str, bucket: str, prefix: str, delimiter: str | None,
                           marker: str | None, max_keys: int) -> ListResult: ...
    #   keys strictly after marker, in binary (UTF-8 byte) order; a common prefix counts as one
    #   entry against max_keys; next_marker is the last key or common prefix returned
    async def delete_object(self, tenant_id: str, bucket: str, key: str) -> None: ...  # idempotent
    async def delete_objects(self, tenant_id: str, bucket: str, keys: list[str]) -> list[DeleteResult]: ...
    async def copy_object(self, tenant_id: str, owner_id: str, src_bucket: str, src_key: str,
                          dst_bucket: str, dst_key: str, replace_metadata: bool,
                          content_type: str | None, metadata: dict[str, str],
                          headers: dict[str, str]) -> ObjectInfo: ...
    #   metadata-only copy: the new version references the same chunks (refcount+1 each)
    async def touch_objects(self, version_ids: list[str]) -> None: ...  # last access (best effort)
