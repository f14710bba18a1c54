"""Records exchanged between the coordinator and its clients (gateway, workers, tools).

These dataclasses are the parameters and answers of the calls declared in coordinator/api.py;
the server serialises them with orjson, the client rebuilds them with pydantic from the
declared types (unknown fields are ignored, for forward compatibility).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_TOUCH_BATCH = 10_000  # versions per touch_objects call (the server refuses more)
# Path-style S3 addresses the gateway serves itself (the product API, share links), so no
# bucket may take these names: CreateBucket refuses them (coordinator/names.py).
RESERVED_BUCKET_NAMES = frozenset({"api", "share"})
# Users' drives (the product's files) are buckets named DRIVE_BUCKET_PREFIX + user id: the
# underscore is in no valid S3 bucket name, and S3 neither lists nor serves them.
DRIVE_BUCKET_PREFIX = "drive_"


def is_drive_bucket(name: str | None) -> bool:
    return name is not None and name.startswith(DRIVE_BUCKET_PREFIX)


class CoordinatorError(Exception):
    """An error answer from the coordinator, with its S3-style code and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass
class NodeInfo:
    node_id: str
    address: str                 # base URL, e.g. http://127.0.0.1:9101
    pool: str = "standard"
    host: str | None = None
    rack: str | None = None
    capacity_bytes: int = 0
    free_bytes: int = 0
    used_bytes: int = 0
    shard_count: int = 0
    state: str = "up"            # up | down (no heartbeat lately) | draining | removed
    last_seen: float = 0.0
    storage_class: str = "STANDARD"   # the pool's tier (config/tiers.py)


@dataclass
class RepairTask:
    """A chunk claimed for repair (coordinator/repairs.py, workers/repair.py): where its shards
    are, which ones to check or move, and where each of those must end up."""

    chunk_key: str
    enc_size: int
    shards: list[ShardPlacement]          # the recorded placement, every index
    readable: list[int]                   # indexes on nodes that answer (up or draining)
    targets: list[ShardPlacement]         # per index to fix: the node its shard must be on
    reasons: list[str] = field(default_factory=list)        # why each target was queued (same order)
    tier: str = "STANDARD"


@dataclass
class ShardMove:
    """One index a repair fixed: its shard is now on new_node (was recorded on old_node)."""

    index: int
    old_node: str
    new_node: str
    checksum: str


@dataclass
class LifecycleTransition:
    days: int                    # after this many days without a write or a read
    storage_class: str           # e.g. STANDARD_IA, GLACIER, COLD (config/tiers.py)


@dataclass
class LifecycleRule:
    """One rule of a bucket's lifecycle configuration (S3's, parsed by the gateway). The filter
    is the AND of what is set: key prefix, every tag, object size bounds (bytes, exclusive)."""

    id: str = ""
    enabled: bool = True
    prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    size_greater_than: int | None = None
    size_less_than: int | None = None
    transitions: list[LifecycleTransition] = field(default_factory=list)
    expiration_days: int | None = None
    expiration_date: float | None = None        # unix seconds (midnight UTC)
    expired_object_delete_marker: bool = False
    noncurrent_days: int | None = None
    newer_noncurrent_versions: int | None = None
    abort_multipart_days: int | None = None


@dataclass
class LifecycleReport:
    """What one lifecycle pass did (coordinator/lifecycle.py)."""

    transitioned: int = 0
    expired: int = 0
    noncurrent_expired: int = 0
    aborted_uploads: int = 0
    restores_done: int = 0
    restores_expired: int = 0


@dataclass
class UsageDelta:
    """Counts to add to a tenant's month (gateway and worker meters send these in batches)."""

    tenant_id: str
    month: str = ""              # "YYYY-MM" (UTC); "": the coordinator's current month
    api_requests: int = 0
    egress_bytes: int = 0
    ingress_bytes: int = 0
    scan_calls: int = 0


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
    versioning: str | None = None    # None (never enabled), "Enabled" or "Suspended"
    acl: str | None = None           # canned ACL ("public-read", ...); None is private
    cors: list[dict[str, Any]] | None = None  # CORS rules as gateway/s3/cors.py stores them
    scan_gate: bool = False      # authenticated S3 reads of `scanning` objects answer 425 too


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
    format: int = 1              # of the stored bytes when exists (the new ref must say the same)


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
    # How the bytes are stored (blob/formats.py): 1 = one AES-GCM message, column-interleaved
    # shards (the first release); 2 = 64 KiB AES-GCM segments, contiguous shards.
    format: int = 1


CHUNK_FORMATS = (1, 2)   # the storage formats this release reads


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
    # The version model (docs/internals.md "Object versions"): version_id above is always the
    # stored id; S3 shows "null" for a null version (see s3_version_id).
    null_version: bool = True
    delete_marker: bool = False
    is_latest: bool = True
    versioning: str | None = None    # the bucket's versioning state when this was answered
    owner_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    acl: str | None = None           # canned ACL; None is private
    # The malware scan's answer: "clean", "infected: NAME", "unscanned: too large (...)";
    # None while scanning or when no scanner ran.
    scan_result: str | None = None

    @property
    def s3_version_id(self) -> str:
        """The VersionId S3 clients see."""
        return "null" if self.null_version else self.version_id
    # RestoreObject of a COLD object: "ongoing" or "done" (readable until restore_expires_at).
    restore: str | None = None
    restore_expires_at: float | None = None


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
class VersionEntry:
    """One version or delete marker in a ListObjectVersions answer."""

    key: str
    version_id: str                  # as S3 shows it ("null" for a null version)
    is_latest: bool
    delete_marker: bool
    last_modified: float
    size: int = 0
    etag: str = ""
    storage_class: str = "STANDARD"
    owner_id: str = ""
    checksum_algorithms: list[str] = field(default_factory=list)


@dataclass
class VersionList:
    versions: list[VersionEntry] = field(default_factory=list)   # key order, newest first per key
    common_prefixes: list[str] = field(default_factory=list)
    is_truncated: bool = False
    next_key_marker: str | None = None
    # The stored id of the last version returned (also for a null version): a position that
    # stays valid when that version is deleted before the next page is asked for.
    next_version_id_marker: str | None = None


@dataclass
class ObjectId:
    """A key, and optionally one of its versions (None: the key as S3 addresses it unversioned)."""

    key: str
    version_id: str | None = None


@dataclass
class DeleteResult:
    key: str
    deleted: bool
    error_code: str | None = None
    error_message: str | None = None
    version_id: str | None = None    # the version removed, or the delete marker made (S3 view)
    delete_marker: bool = False      # a marker was made, or the version removed was one


@dataclass(frozen=True)
class WriteCondition:
    """A conditional write's precondition on the key's current version (S3 `If-None-Match: *`
    and `If-Match: ETag` on PutObject and CompleteMultipartUpload). The gateway checks it
    before taking the body, to refuse early; the coordinator checks it again inside the
    commit's transaction, under the key's lock, so of two racing create-only writes
    exactly one succeeds."""

    if_none_match: bool = False      # the key must have no current version
    if_match: str | None = None      # the current version's ETag must be this one ("*": any)


@dataclass
class OutboxEvent:
    """One event of the outbox as a worker claims it (coordinator/workqueue.py)."""

    id: int
    event_type: str
    payload: dict[str, Any]
    created_at: float
    attempts: int = 0                # claims so far, this one included
    lease_until: float | None = None
    last_error: str | None = None
    parked_at: float | None = None   # set when parked after too many attempts


@dataclass
class WorkerLease:
    """A named cluster-wide lease a worker holds to run a periodic job alone, with the job's
    state (cursor, figures of the last run) that outlives the worker holding it."""

    name: str
    holder: str
    lease_until: float
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Download:
    """One read of an object's bytes, for the audit: a quarantine names who downloaded the
    version before (gateways report S3 reads in batches: record_downloads)."""

    version_id: str
    bucket: str
    key: str
    actor: str                       # user id, "anonymous", or "link:ID" for a share link
    client_addr: str | None = None
    at: float = 0.0
    via: str = "s3"                  # s3 | share | api


@dataclass
class AuditEntry:
    """One audit row (downloads, scans, quarantines, ... of an object version)."""

    at: float
    actor: str
    action: str
    target: str
    detail: dict[str, Any] = field(default_factory=dict)
    client_addr: str | None = None
    version_id: str | None = None


@dataclass
class RescanInfo:
    """A `shardbox admin scan --rescan` request and how far it got."""

    id: int
    since: float
    requested_at: float
    requested_by: str
    cursor: str = ""
    scanned: int = 0
    found: int = 0
    finished_at: float | None = None


@dataclass
class RescanItem:
    """A version a rescan goes over next."""

    version_id: str
    tenant_id: str
    bucket: str
    key: str
    size: int


@dataclass
class RescanBatch:
    """The oldest unfinished rescan and the next versions it goes over (none: it is done)."""

    rescan: RescanInfo
    items: list[RescanItem] = field(default_factory=list)


@dataclass
class PipelineStatus:
    """Backlogs of the background pipeline, for `shardbox admin health` and monitoring."""

    outbox_pending: int = 0
    outbox_oldest_s: float = 0.0        # age of the oldest due event: the outbox lag
    outbox_claimed: int = 0             # events a worker is handling now (lease running)
    parked_events: int = 0
    scanning: int = 0                   # versions waiting for their scan
    scanning_oldest_s: float = 0.0
    gc_chunks: int = 0                  # chunks at refcount 0 (any age)
    gc_due_chunks: int = 0              # ... of which past the grace period
    gc_orphans: int = 0                 # shards on nodes no metadata references (candidates)
    expired_uploads: int = 0            # upload sessions past their expiry, not yet aborted
    rescans_active: int = 0


@dataclass
class GcChunk:
    """A chunk GC claimed: past its grace at refcount 0; its shards are to be deleted."""

    chunk_key: str
    size: int
    shards: list[ShardPlacement] = field(default_factory=list)   # none for an inline chunk


@dataclass
class GcOrphan:
    """A shard on a node that no metadata has referenced for the grace period, claimed for
    deletion."""

    id: int
    node_id: str
    address: str
    shard_id: str
