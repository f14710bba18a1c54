"""Every coordinator call, declared once.

A call is a method of one of the Protocols below: its name, typed parameters (with defaults),
return type and docstring (what it does, which error codes it answers) are the whole contract.
From them come, with nothing spelled twice:

- the client (coordinator/client.py): `CoordinatorClient` gets one method per call, which
  sends the arguments as JSON and turns the answer back into the declared return type;
- the server's routing and request validation (coordinator/http.py): `POST {PREFIX}/<name>`
  (admin calls: `{PREFIX}/admin/<name>`), the body validated against the declared parameters;
- the implementation's shape: `Metadata` (coordinator/service.py) must implement every call
  with the same signature, which tests/coordinator/test_api_contract.py checks, together with
  a round trip of every call through the real client and server.

Adding a call: declare it here, implement it on `Metadata`. Parameters at their default are
not sent, so a newer client keeps working against an older coordinator as long as it only
uses what that one knows. Errors are `CoordinatorError(code, message, status)` on both sides.
Times are unix seconds (float).
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model

from coordinator.product_records import (
    ChunkTarget,
    FileContent,
    FileEntry,
    FolderPage,
    GrantInfo,
    LinkContent,
    LinkInfo,
    LinkView,
    LoginCandidate,
    Principal,
    TokenInfo,
    UploadStatus,
    UploadTarget,
    Usage,
    VersionEntry,
)
from coordinator.records import (
    AuditEntry,
    BucketInfo,
    ChunkPlan,
    ChunkRef,
    DeleteResult,
    Download,
    GcChunk,
    GcOrphan,
    KeyInfo,
    LifecycleReport,
    LifecycleRule,
    ListResult,
    NodeInfo,
    ObjectId,
    ObjectInfo,
    OutboxEvent,
    PartInfo,
    PartList,
    PipelineStatus,
    RepairTask,
    RescanBatch,
    RescanInfo,
    ShardMove,
    UploadInfo,
    UploadList,
    UsageDelta,
    VersionList,
    WorkerLease,
    WriteCondition,
)

PREFIX = "/internal/v1"
F = TypeVar("F", bound=Callable[..., Any])


def quiet(fn: F) -> F:
    """A lookup the caller logs itself (same request id): the coordinator logs a success at
    debug level; errors and slow answers are logged at info as for every call."""
    fn.__shardbox_quiet__ = True  # type: ignore[attr-defined]
    return fn


class CoordinatorAPI(Protocol):
    """The calls the gateway and the workers make."""

    # ---- identity ----------------------------------------------------------------------------
    @quiet
    async def get_key(self, access_key: str) -> KeyInfo:
        """The access key's secret, user and tenant. InvalidAccessKeyId (403) if unknown."""
        ...

    # ---- nodes and placement -----------------------------------------------------------------
    async def list_nodes(self) -> list[NodeInfo]:
        """Every registered node with its last health figures and up/down state."""
        ...

    async def place_chunks(
        self, tenant_id: str, chunks: list[tuple[str, int]], storage_class: str = "STANDARD"
    ) -> list[ChunkPlan]:
        """For each (sha256 hex, plaintext size), in order: the chunk exists already (dedup, in
        the tenant's scope) or where its shards go: 14 placements on 14 up nodes of the storage
        class's pool (config/tiers.py), or one per up node there when fewer are up (the last
        indexes unplaced; the writer decides if that is enough)."""
        ...

    async def report_shard_failure(self, chunk_key: str, index: int, node_id: str, reason: str) -> None:
        """A shard a reader could not use (missing, corrupt, unreachable): queued for repair."""
        ...

    # ---- repair (workers/repair.py; coordinator/repairs.py) -------------------------------------
    async def claim_repairs(
        self, worker_id: str, limit: int = 16, lease_s: float = 300.0
    ) -> list[RepairTask]:
        """Up to `limit` chunks from the repair queue, most lost shards first, leased to worker_id
        for lease_s seconds: each with its recorded shards and, per index to fix, the node its
        shard must end up on. Also queues the shards of nodes down past node_repair_after_s.
        InvalidArgument for an empty worker id, a limit outside 1..256 or a lease outside
        1..86400 s."""
        ...

    async def complete_repair(
        self,
        chunk_key: str,
        worker_id: str,
        moved: list[ShardMove],
        verified: list[int],
        failed: list[tuple[int, str]],
        bytes_written: int = 0,
    ) -> None:
        """A claimed chunk's outcome: `moved` shards now on new nodes (their placement rows move
        only if they still name old_node), `verified` ones found good where they are (both
        leave the queue), `failed` ones go back with a growing backoff and their error.
        InvalidArgument for a malformed move."""
        ...

    async def record_usage(self, deltas: list[UsageDelta]) -> None:
        """Add to tenants' monthly counters (requests, egress, ingress, scans); at most 10000
        deltas. InvalidArgument for a month not YYYY-MM or a negative count."""
        ...

    # ---- lifecycle and tiers (coordinator/lifecycle.py) ------------------------------------------
    async def put_bucket_lifecycle(self, tenant_id: str, bucket: str, rules: list[LifecycleRule]) -> None:
        """Replace the bucket's lifecycle rules. InvalidArgument (naming the rule) for rules S3
        refuses; NoSuchBucket, AccessDenied."""
        ...

    async def get_bucket_lifecycle(self, tenant_id: str, bucket: str) -> list[LifecycleRule]:
        """NoSuchLifecycleConfiguration (404) when the bucket has none; NoSuchBucket."""
        ...

    async def delete_bucket_lifecycle(self, tenant_id: str, bucket: str) -> None:
        """Idempotent; NoSuchBucket."""
        ...

    async def restore_object(
        self, tenant_id: str, bucket: str, key: str, days: int, version_id: str | None = None
    ) -> str:
        """RestoreObject of a COLD version: "started" (its chunks move back to STANDARD nodes;
        readable once the lifecycle pass finds none left to move) or "done" (restored already:
        readable until now + days at least). InvalidObjectState (403) if the version is not in
        a COLD class, RestoreAlreadyInProgress (409), NoSuchKey, InvalidArgument for days
        outside 1..36500."""
        ...

    async def lifecycle_step(self, now: float | None = None, limit: int = 1000) -> LifecycleReport:
        """One lifecycle pass at time `now` (default: the coordinator's clock): transitions, expirations,
        aborts of old multipart uploads, restores finished or expired; at most `limit`
        objects. Bytes move afterwards through the repair queue."""
        ...

    # ---- buckets -----------------------------------------------------------------------------
    async def create_bucket(
        self, tenant_id: str, owner_id: str, name: str, region: str, acl: str | None = None
    ) -> BucketInfo:
        """BucketAlreadyOwnedByYou / BucketAlreadyExists (409), InvalidBucketName (400). acl: a
        canned ACL, "private" (None) or "public-read" (anyone may list it unsigned)."""
        ...

    @quiet
    async def get_bucket(self, tenant_id: str, name: str) -> BucketInfo:
        """NoSuchBucket (404)."""
        ...

    async def list_buckets(self, tenant_id: str) -> list[BucketInfo]:
        """The tenant's buckets in name order."""
        ...

    async def delete_bucket(self, tenant_id: str, name: str) -> None:
        """NoSuchBucket (404), BucketNotEmpty (409): any version or delete marker left, or a
        multipart upload in progress."""
        ...

    async def set_bucket_versioning(self, tenant_id: str, name: str, status: str) -> BucketInfo:
        """"Enabled" or "Suspended" (never back to unversioned); the version model is in
        coordinator/versions.py. InvalidArgument for another status."""
        ...

    async def set_bucket_acl(self, tenant_id: str, name: str, acl: str) -> BucketInfo:
        """A canned ACL: "private" or "public-read". InvalidArgument for another."""
        ...

    async def set_bucket_cors(
        self, tenant_id: str, name: str, rules: list[dict[str, Any]] | None
    ) -> BucketInfo:
        """The CORS rules as the gateway parsed them (gateway/s3/cors.py); None removes them."""
        ...

    @quiet
    async def find_bucket(self, name: str) -> BucketInfo:
        """The bucket whoever owns it, for requests that carry no credentials (public-read
        ACLs, CORS preflights): the caller reveals nothing about it beyond what its ACL and
        CORS rules allow. NoSuchBucket."""
        ...

    # ---- uploads: a single PUT of unknown length and multipart share upload sessions ---------
    async def begin_upload(
        self,
        tenant_id: str,
        owner_id: str,
        bucket: str,
        key: str,
        kind: str,
        reserve_bytes: int,
        content_type: str | None,
        metadata: dict[str, str],
        headers: dict[str, str],
        storage_class: str,
        checksum_algorithm: str | None,
        tags: dict[str, str] | None = None,
        acl: str | None = None,
        write_id: str | None = None,
        retried: bool = False,
    ) -> UploadInfo:
        """A session of kind put|multipart with reserve_bytes reserved against the tenant's
        quota in one conditional UPDATE. NoSuchBucket, QuotaExceeded (403). tags and acl go
        to the version the session commits. write_id / retried as finalize_put: a retry whose
        first attempt's session is still open gets that session."""
        ...

    async def finalize_put(
        self,
        upload_id: str,
        size: int,
        etag: str,
        chunks: list[ChunkRef],
        checksums: dict[str, str],
        condition: WriteCondition | None = None,
        write_id: str | None = None,
        retried: bool = False,
    ) -> ObjectInfo:
        """One transaction: chunk upserts (refcount+1), the object version (the key's new
        latest; in a bucket that is not versioning-Enabled it replaces the key's null version,
        whose chunks lose a reference), audit, outbox, quota reserved -> used.
        A condition that does not hold: PreconditionFailed (412), or NoSuchKey for If-Match on
        a key with no current version; nothing changes and the session stays open.
        write_id names the request (the SDK's invocation id) and is kept with the version; a
        retried request (retried=True) whose first attempt made a version of the key with the
        same write_id and ETag gets that version back, and nothing else changes."""
        ...

    async def put_object(
        self,
        tenant_id: str,
        owner_id: str,
        bucket: str,
        key: str,
        size: int,
        etag: str,
        content_type: str | None,
        metadata: dict[str, str],
        headers: dict[str, str],
        storage_class: str,
        chunks: list[ChunkRef],
        checksums: dict[str, str],
        condition: WriteCondition | None = None,
        tags: dict[str, str] | None = None,
        acl: str | None = None,
        write_id: str | None = None,
        retried: bool = False,
    ) -> ObjectInfo:
        """finalize_put without a session, in one transaction (small objects: one inline chunk).
        NoSuchBucket (another tenant's too); QuotaExceeded unless used + reserved + size - size of the
        replaced version <= quota (then nothing changes); conditions as finalize_put."""
        ...

    async def abort_upload(self, tenant_id: str, bucket: str, upload_id: str) -> None:
        """Drop the session, its parts' chunk references and its reservation. NoSuchUpload."""
        ...

    @quiet
    async def get_upload(self, tenant_id: str, bucket: str, key: str, upload_id: str) -> UploadInfo:
        """NoSuchUpload (404) unless the session exists for that bucket and key."""
        ...

    async def put_part(
        self,
        tenant_id: str,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        size: int,
        etag: str,
        chunks: list[ChunkRef],
        checksums: dict[str, str],
    ) -> PartInfo:
        """Record (or replace) one part of a multipart upload. NoSuchUpload."""
        ...

    async def list_parts(
        self, tenant_id: str, bucket: str, key: str, upload_id: str, max_parts: int, part_number_marker: int
    ) -> PartList:
        """Parts after part_number_marker, in order. NoSuchUpload."""
        ...

    async def list_uploads(
        self,
        tenant_id: str,
        bucket: str,
        prefix: str,
        delimiter: str | None,
        key_marker: str | None,
        upload_id_marker: str | None,
        max_uploads: int,
    ) -> UploadList:
        """Multipart uploads in progress, in (key, upload id) order, S3's marker semantics."""
        ...

    async def complete_upload(
        self,
        tenant_id: str,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        condition: WriteCondition | None = None,
    ) -> ObjectInfo:
        """parts: (part_number, ETag as the client sent it). InvalidPart, InvalidPartOrder,
        EntityTooSmall (every part but the last >= 5 MiB), NoSuchUpload; the ETag is
        md5-of-md5s-N. Conditions as finalize_put. A retry of a completion that succeeded (its
        answer lost) answers that version again, while it exists and the parts are the same."""
        ...

    # ---- objects ------------------------------------------------------------------------------
    @quiet
    async def get_object(
        self,
        tenant_id: str,
        bucket: str,
        key: str,
        version_id: str | None = None,
        with_chunks: bool = False,
        range_start: int | None = None,
        range_end: int | None = None,
        range_suffix: int | None = None,
        part_number: int | None = None,
        delete_markers: bool = False,
    ) -> ObjectInfo:
        """The latest version, or version_id ("null": the null version). NoSuchBucket, NoSuchKey,
        NoSuchVersion, InvalidArgument (a malformed version id). A delete marker is answered
        only with delete_markers (GET/HEAD show it); otherwise a latest marker is NoSuchKey and
        one named by version id MethodNotAllowed (405). With with_chunks and one narrowing of
        the read (a byte range of inclusive offsets, either None = from 0 / to the end, the end
        may lie past the object; the last range_suffix bytes; or the part_number-th part by position, a
        non-multipart object being part 1): only the ChunkRefs overlapping those bytes, with
        absolute offsets (none if they select no byte); everything else as without it.
        InvalidArgument if start < 0, end < start, suffix < 0, part_number < 1 or more than one
        narrowing."""
        ...

    async def list_objects(
        self,
        tenant_id: str,
        bucket: str,
        prefix: str,
        delimiter: str | None,
        marker: str | None,
        max_keys: int,
    ) -> ListResult:
        """Keys strictly after marker in binary (UTF-8 byte) order; a common prefix counts as
        one entry against max_keys; next_marker is the last key or common prefix returned."""
        ...

    async def list_object_versions(
        self,
        tenant_id: str,
        bucket: str,
        prefix: str,
        delimiter: str | None,
        key_marker: str | None,
        version_id_marker: str | None,
        max_keys: int,
    ) -> VersionList:
        """Every version and delete marker: keys in binary order, each key's newest first; a
        common prefix is one entry. Starts after every version of key_marker or, with
        version_id_marker, after that version of it (next_version_id_marker, a stored id, keeps
        its place when that version is deleted meanwhile; "null" names the null version).
        InvalidArgument for a version_id_marker without key_marker."""
        ...

    async def delete_object(
        self,
        tenant_id: str,
        bucket: str,
        key: str,
        version_id: str | None = None,
        owner_id: str | None = None,
        write_id: str | None = None,
        retried: bool = False,
    ) -> DeleteResult:
        """Without version_id, as the bucket's versioning has it: never versioned, the key's
        (null) version goes; Enabled, a delete marker is added; Suspended, the null version
        goes and a null delete marker is added. With it, that version (or marker) goes for
        good, and if it was the latest the newest remaining becomes the latest. Idempotent: a
        missing key or version is not an error. The result names the version removed or the
        marker made (S3's view: "null" for a null version; None in a never-versioned bucket).
        owner_id: who deletes (a marker's owner; audit). write_id / retried as finalize_put: a
        retry whose marker is still the key's latest version gets that marker again."""
        ...

    async def delete_objects(
        self,
        tenant_id: str,
        bucket: str,
        objects: list[ObjectId],
        owner_id: str | None = None,
        write_id: str | None = None,
        retried: bool = False,
    ) -> list[DeleteResult]:
        """delete_object for each (at most 1000), each in its own transaction; one result per
        entry, in order (per-entry errors in error_code / error_message)."""
        ...

    async def copy_object(
        self,
        tenant_id: str,
        owner_id: str,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        replace_metadata: bool,
        content_type: str | None,
        metadata: dict[str, str],
        headers: dict[str, str],
        src_version_id: str | None = None,
        tags: dict[str, str] | None = None,
        acl: str | None = None,
        write_id: str | None = None,
        retried: bool = False,
    ) -> ObjectInfo:
        """Metadata-only copy: the new version references the same chunks (refcount+1 each).
        The source is its key's latest version or src_version_id (NoSuchVersion; a delete
        marker: InvalidRequest). tags None copies the source's. write_id / retried as
        finalize_put."""
        ...

    async def set_object_tags(
        self, tenant_id: str, bucket: str, key: str, version_id: str | None, tags: dict[str, str] | None
    ) -> ObjectInfo:
        """Replace the tags of the latest version or of version_id (None or {}: no tags).
        NoSuchKey, NoSuchVersion, MethodNotAllowed (a delete marker)."""
        ...

    async def set_object_acl(
        self, tenant_id: str, bucket: str, key: str, version_id: str | None, acl: str
    ) -> ObjectInfo:
        """A canned ACL on the latest version or version_id: "private" or "public-read"
        (anyone may GET and HEAD it unsigned). Errors as set_object_tags."""
        ...

    async def touch_objects(self, version_ids: list[str]) -> None:
        """Record last access (best effort; at most records.MAX_TOUCH_BATCH ids)."""
        ...

    # ---- background work (workers; coordinator/workqueue.py) ---------------------------------
    async def claim_events(
        self, worker_id: str, event_types: list[str], limit: int = 16, lease_s: float = 60.0
    ) -> list[OutboxEvent]:
        """Up to `limit` due outbox events of these types nobody holds, oldest first, claimed
        by worker_id for lease_s seconds (attempts + 1). FOR UPDATE SKIP LOCKED on PostgreSQL."""
        ...

    async def finish_event(self, event_id: int, worker_id: str) -> bool:
        """Handled: the event leaves the outbox. False if worker_id no longer held it."""
        ...

    async def retry_event(
        self, event_id: int, worker_id: str, error_message: str, retry_in_s: float, park: bool = False
    ) -> bool:
        """Handling failed: due again in retry_in_s, or parked for an operator. False if
        worker_id no longer held it."""
        ...

    async def extend_event_leases(self, worker_id: str, event_ids: list[int], lease_s: float) -> list[int]:
        """Leases of events still being handled run lease_s from now; the ids still held."""
        ...

    async def acquire_lease(self, name: str, worker_id: str, lease_s: float) -> WorkerLease | None:
        """The named cluster-wide lease if free and due (see release_lease), else None."""
        ...

    async def renew_lease(
        self, name: str, worker_id: str, lease_s: float, state: dict[str, Any] | None = None
    ) -> WorkerLease | None:
        """Extend a held lease, saving the job's state if given; None if it was lost."""
        ...

    async def release_lease(
        self, name: str, worker_id: str, state: dict[str, Any] | None = None, run_again_in_s: float = 0.0
    ) -> bool:
        """Free the lease, saving the job's state; nobody takes it again for run_again_in_s."""
        ...

    # ---- garbage collection and expiry (coordinator/gc.py) ----------------------------------
    async def gc_claim_chunks(self, worker_id: str, limit: int = 200, lease_s: float = 60.0) -> list[GcChunk]:
        """Up to `limit` chunks at refcount 0 for longer than the grace period, oldest first,
        claimed for lease_s (from now on no write may reference them), with their shards."""
        ...

    async def gc_finish_chunks(self, worker_id: str, chunk_keys: list[str]) -> int:
        """The claimed chunks' shards are deleted: remove their rows. How many went."""
        ...

    async def gc_note_shards(self, node_id: str, shard_ids: list[str], pass_id: str) -> int:
        """One page of a node's shard listing (reconciliation pass pass_id): the shards no
        metadata places there become orphan candidates. How many are."""
        ...

    async def gc_forget_orphans(self, node_id: str, pass_id: str) -> int:
        """After a whole pass over the node: forget candidates that pass did not see."""
        ...

    async def gc_claim_orphans(
        self, worker_id: str, limit: int = 1000, lease_s: float = 60.0
    ) -> list[GcOrphan]:
        """Up to `limit` orphan candidates unreferenced for the grace period, claimed."""
        ...

    async def gc_finish_orphans(self, worker_id: str, orphan_ids: list[int]) -> int:
        """The claimed orphans are deleted on their nodes: forget them."""
        ...

    async def expire_uploads(self, limit: int = 100) -> int:
        """Abort up to `limit` upload sessions past their expiry (references and reservations
        released, audited as upload.expire). How many."""
        ...

    # ---- malware scans (coordinator/scans.py) -----------------------------------------------
    async def record_scan(
        self, version_id: str, status: str, result: str, scanner: str, expect_status: list[str]
    ) -> bool:
        """A scan's outcome: status ready|quarantined, result text ("clean", "infected: NAME",
        "unscanned: too large (...)"), only if the version's status is one of expect_status
        (False otherwise: deleted, or decided already). Quarantine: audit naming the earlier
        downloaders, share links revoked, event object.quarantined. InvalidArgument."""
        ...

    async def record_downloads(self, downloads: list[Download]) -> None:
        """Reads of objects' bytes, for the audit (gateways send them in batches)."""
        ...

    async def next_rescan_items(self, limit: int = 100) -> RescanBatch | None:
        """The oldest unfinished rescan and its next `ready` versions after its cursor."""
        ...

    async def advance_rescan(
        self, rescan_id: int, cursor: str, scanned: int, found: int, finished: bool = False
    ) -> None:
        """Move a rescan's cursor, add to its counts, mark it finished."""
        ...


class AdminAPI(Protocol):
    """The calls of `shardbox admin` and `shardbox up`, served under {PREFIX}/admin/."""

    async def create_tenant(self, name: str, quota_bytes: int | None = None) -> dict[str, Any]:
        """AlreadyExists (409) if the name is taken."""
        ...

    async def set_quota(self, tenant_name: str, quota_bytes: int) -> dict[str, Any]:
        """NoSuchTenant (404)."""
        ...

    async def get_tenant(self, tenant_name: str) -> dict[str, Any]:
        """Quota, used and reserved bytes. NoSuchTenant (404)."""
        ...

    async def create_user(self, tenant_name: str, user_name: str, is_admin: bool = False) -> dict[str, Any]:
        """A user of the tenant (created if new). AlreadyExists (409) if the name is taken."""
        ...

    async def create_key(self, user_name: str) -> KeyInfo:
        """A new access key for the user. NoSuchUser (404)."""
        ...

    async def list_users(self) -> list[dict[str, Any]]:
        """Every user with tenant and active access key ids (never secrets)."""
        ...

    async def ensure_admin(self) -> KeyInfo:
        """First run: tenant "default", user "admin" (is_admin) and a key; later runs: that key."""
        ...

    async def set_password(self, user_name: str, password_hash: str | None) -> None:
        """Set a user's password (an argon2id PHC string, hashed by the caller) or remove it
        (None); the user's web sessions end. NoSuchUser (404), InvalidArgument."""
        ...

    async def set_user_quota(self, user_name: str, quota_bytes: int | None) -> dict[str, Any]:
        """The user's own quota over their drive (None: only the tenant's applies). NoSuchUser."""
        ...

    async def list_parked_events(self, limit: int = 100, after_id: int = 0) -> list[OutboxEvent]:
        """Events parked after too many failed attempts, in id order after after_id."""
        ...

    async def replay_events(self, event_ids: list[int] | None = None, actor: str = "admin") -> int:
        """Put parked events (these ids, or all) back in the queue with fresh attempts; how many."""
        ...

    async def list_leases(self) -> list[WorkerLease]:
        """Every named worker lease (periodic jobs) with its holder and state."""
        ...

    async def request_rescan(self, since: float | None = None, actor: str = "admin") -> RescanInfo:
        """Scan again every ready version created since `since` (unix seconds; None: all), in
        the background at the workers' rescan rate; late positives are quarantined."""
        ...

    async def list_rescans(self, limit: int = 20) -> list[RescanInfo]:
        """The latest rescan requests, newest first, with their progress."""
        ...

    async def set_bucket_scan_gate(self, bucket: str, gate: bool, actor: str = "admin") -> BucketInfo:
        """Whether authenticated S3 reads of the bucket's objects still being scanned answer 425
        (by default they are served: read-after-write). NoSuchBucket (404)."""
        ...

    async def object_audit(
        self, bucket: str, key: str, version_id: str | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """Audit rows of the object's versions (or one version), oldest first: downloads (who,
        when, from where), scans, quarantines. NoSuchBucket (404)."""
        ...

    async def pipeline_status(self) -> PipelineStatus:
        """Backlogs of the background pipeline: outbox lag, parked events, scans, GC, expiry."""
        ...

    async def drain_node(self, node_id: str) -> dict[str, Any]:
        """Mark the node draining (placement stops using it) and queue every shard it holds to
        move elsewhere. NoSuchNode (404); InvalidRequest if it was removed."""
        ...

    async def remove_node(self, node_id: str, force: bool = False) -> dict[str, Any]:
        """Mark the node removed and queue the rebuild of every shard it still holds, at once
        (no down grace period). InvalidRequest if it is up and holds shards (drain it first)
        unless force. NoSuchNode (404)."""
        ...

    async def erase_user(self, user_name: str) -> dict[str, Any]:
        """GDPR erasure (coordinator/erase.py): the user's object versions (chunks only lose a
        reference), upload sessions, emptied buckets, keys and row go; audit rows about them are
        stripped of what identifies the person; a `user.erased` tombstone stays. NoSuchUser."""
        ...

    async def cluster_health(self) -> dict[str, Any]:
        """Nodes (state, pool, failure domain, capacity, shards, last heartbeat and scrub), chunks
        by readable shard count (14 .. 10, under_10), repair backlog and rate, scan and GC
        backlogs, outbox lag, and the verdict `status`: healthy | degraded | at_risk."""
        ...

    async def usage_report(
        self, month: str | None = None, tenant_name: str | None = None
    ) -> list[dict[str, Any]]:
        """Per tenant: objects, logical bytes (by storage class), physical bytes after dedup (by
        tier), quota, and the month's (YYYY-MM, default this one) requests, egress, ingress and
        scans. NoSuchTenant for an unknown tenant_name; InvalidArgument for a bad month."""
        ...

    async def repair_status(self) -> dict[str, Any]:
        """Repair backlog (shards, chunks, by reason, in progress, backing off), what was repaired
        in the last window and at what rate, and the shards whose repair keeps failing."""
        ...


class ProductAPI(Protocol):
    """The calls of the product API (gateway/api), served under {PREFIX}/product/.

    Secrets arrive hashed: tokens as SHA-256 hex, passwords as argon2id PHC strings; the
    gateway verifies passwords itself against the hash these calls return."""

    # ---- accounts ------------------------------------------------------------------------------
    async def login_begin(self, user_name: str, client_addr: str) -> LoginCandidate:
        """Count one login attempt for (user, address) and for the address; allowed=False with
        retry_after_s when either count is full (nothing counted then). The user's password
        hash, None for an unknown user or one without a password."""
        ...

    async def login_succeeded(
        self, user_id: str, user_name: str, client_addr: str, token_hash: str, ttl_s: float
    ) -> Principal:
        """The password matched: a session token (by its hash) for ttl_s seconds of the
        coordinator's clock (the one that checks it); the (user, address) count starts again and
        the attempt is not held against the address."""
        ...

    async def login_failed(self, user_name: str, client_addr: str) -> None:
        """Audit a wrong password (the attempt was counted by login_begin)."""
        ...

    @quiet
    async def authenticate(self, token_hash: str) -> Principal:
        """Who the token stands for. Unauthorized (401) if unknown, expired or revoked."""
        ...

    async def create_api_token(
        self, user_id: str, token_hash: str, name: str, expires_at: float | None = None
    ) -> TokenInfo:
        """A long-lived API token (until revoked, or expires_at). InvalidArgument."""
        ...

    async def list_tokens(self, user_id: str) -> list[TokenInfo]:
        """The user's live sessions and API tokens, oldest first."""
        ...

    async def revoke_token(self, user_id: str, token_id: str) -> None:
        """End a session (logout) or revoke an API token at once. NotFound (404)."""
        ...

    async def get_usage(self, user_id: str) -> Usage:
        """Quota, used and reserved bytes of the user and of the user's tenant."""
        ...

    # ---- files and folders (every call names the asking user: coordinator/drive.py `access`) ---
    # Errors: NotFound (404) for what the user may not see or that is in the trash, AccessDenied
    # (403) for what the user sees but may not change, AlreadyExists (409) for a taken name.
    @quiet
    async def get_entry(self, user_id: str, file_id: str) -> FileEntry:
        """One file or folder."""
        ...

    @quiet
    async def stat_path(self, user_id: str, path: str) -> FileEntry:
        """The entry at a path of the user's drive ("/" is its root)."""
        ...

    @quiet
    async def list_folder(
        self, user_id: str, folder_id: str | None, path: str | None, cursor: str | None, limit: int
    ) -> FolderPage:
        """A folder's live items (by id, or by path in the user's drive), folders first, then by
        name; `next` is the cursor of the next page."""
        ...

    async def create_folder(
        self, user_id: str, path: str | None = None, parent_id: str | None = None, name: str | None = None
    ) -> FileEntry:
        """A folder at `path` (missing folders above it too) or `name` in folder `parent_id`."""
        ...

    async def update_file(
        self, user_id: str, file_id: str, name: str | None = None, parent_id: str | None = None,
        path: str | None = None,
    ) -> FileEntry:
        """Rename and/or move within the drive (metadata only)."""
        ...

    async def trash_file(self, user_id: str, file_id: str) -> None:
        """Into the trash with everything below it (restorable for trash_retention_s)."""
        ...

    async def list_trash(self, user_id: str) -> list[FileEntry]:
        """The user's trashed items still restorable, newest first."""
        ...

    async def restore_file(self, user_id: str, file_id: str) -> FileEntry:
        """Out of the trash (to the root if its folder is gone; renamed if its name was taken)."""
        ...

    async def purge_trash(self, limit: int = 100) -> int:
        """Delete for good what stayed in the trash past its retention (for the worker)."""
        ...

    async def list_versions(self, user_id: str, file_id: str) -> list[VersionEntry]:
        """A file's versions, newest first."""
        ...

    async def restore_version(self, user_id: str, file_id: str, version: str) -> FileEntry:
        """An older version's content becomes the current version (edit permission)."""
        ...

    @quiet
    async def file_content(
        self, user_id: str, file_id: str, version: str | None = None, range_start: int | None = None,
        range_end: int | None = None,
    ) -> FileContent:
        """The entry and the version with the chunks of bytes range_start..range_end. AccessDenied
        for quarantined content, TooEarly (425) for content still scanned, to all but the owner."""
        ...

    # ---- uploads -------------------------------------------------------------------------------
    async def upload_init(
        self, user_id: str, target: UploadTarget, size: int, chunk_size: int, chunk_digests: list[str],
        content_hash: str, content_type: str | None = None, if_match: str | None = None,
    ) -> UploadStatus:
        """A resumable upload: quota of the drive's owner and tenant reserved (QuotaExceeded),
        the chunks the tenant stores held for it (not missing). EditConflict (409) when
        if_match is not the file's current version."""
        ...

    @quiet
    async def upload_chunk_target(self, upload_id: str, index: int) -> ChunkTarget:
        """What a chunk PUT must bring. NotFound for a session that is gone or expired."""
        ...

    async def upload_chunk_landed(self, upload_id: str, index: int, chunk: ChunkRef) -> None:
        """The gateway stored (and checked) chunk `index`: the session holds it."""
        ...

    @quiet
    async def upload_status(self, user_id: str, upload_id: str) -> UploadStatus:
        """Which chunks landed and which are missing."""
        ...

    async def upload_abort(self, user_id: str, upload_id: str) -> None:
        """Drop the session, its chunk references and its reservations."""
        ...

    async def upload_finalize(self, user_id: str, upload_id: str, if_match: str | None = None) -> FileEntry:
        """One transaction: the file's new version, references, quota reserved -> used, audit,
        outbox. UploadIncomplete (409) while chunks are missing; EditConflict (409) when
        if_match is not the current version (the session stays open)."""
        ...

    # ---- sharing -------------------------------------------------------------------------------
    async def grant_create(self, user_id: str, file_id: str, grantee: str, permission: str) -> GrantInfo:
        """view | edit for a user of the same tenant (owner only). NotFound for an unknown user."""
        ...

    async def grant_list(self, user_id: str, file_id: str) -> list[GrantInfo]:
        """The item's grants (owner only)."""
        ...

    async def grant_revoke(self, user_id: str, file_id: str, grant_id: str) -> None:
        """Effective on the next request. NotFound."""
        ...

    async def shared_with_me(self, user_id: str) -> list[FileEntry]:
        """Items granted to the user directly."""
        ...

    async def link_create(
        self, user_id: str, file_id: str, token_hash: str, permission: str, expires_at: float | None = None,
        password_hash: str | None = None, max_downloads: int | None = None,
    ) -> LinkInfo:
        """A share link (owner only) whose token hashes to token_hash."""
        ...

    async def link_list(self, user_id: str) -> list[LinkInfo]:
        """The user's links not revoked, newest first."""
        ...

    async def link_revoke(self, user_id: str, link_id: str) -> None:
        """Revoke that one link. NotFound."""
        ...

    @quiet
    async def link_resolve(
        self, token_hash: str, path: str | None = None, password_attempt: bool = False,
        client_addr: str | None = None,
    ) -> LinkView:
        """The public lookup: NotFound (unknown, revoked, trashed, quarantined), Gone (expired,
        used up), TooManyRequests (password attempts, counted when password_attempt)."""
        ...

    @quiet
    async def link_content(
        self, link_id: str, file_id: str, version_id: str, range_start: int | None = None,
        range_end: int | None = None,
    ) -> LinkContent:
        """The link checked again for a byte-serving request, and the chunks of those bytes.
        NotFound, Gone (also when the file changed since the URL was made), TooEarly."""
        ...

    async def link_download_begin(
        self, link_id: str, file_id: str, version_id: str, client_addr: str | None = None
    ) -> str:
        """Reserve one of max_downloads for a transfer of the last byte. Gone when none is left."""
        ...

    async def link_download_end(self, download_id: str, completed: bool) -> None:
        """Count (and audit) a completed download, or give the reservation back."""
        ...


# Each declaring Protocol and the path its calls are served under.
GROUPS: tuple[tuple[type, str], ...] = (
    (CoordinatorAPI, PREFIX), (AdminAPI, f"{PREFIX}/admin"), (ProductAPI, f"{PREFIX}/product"),
)


@dataclass(frozen=True)
class Call:
    """One declared call, with what the client and the server derive from it."""

    name: str
    path: str
    signature: inspect.Signature     # without self
    types: dict[str, Any]            # resolved parameter types, and "return"
    params: type[BaseModel]          # validates a request body (unknown fields refused)
    result: TypeAdapter[Any]         # turns an answer's JSON into the declared return type
    quiet: bool
    doc: str

    def arguments(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The JSON-ready parameters of one invocation, leaving out those at their default."""
        bound = self.signature.bind(*args, **kwargs)
        return {
            name: value
            for name, value in bound.arguments.items()
            if value is not self.signature.parameters[name].default
            and value != self.signature.parameters[name].default
        }


def _call(name: str, fn: Callable[..., Any], path: str) -> Call:
    hints = typing.get_type_hints(fn)
    full = inspect.signature(fn)
    params = [p for p in full.parameters.values() if p.name != "self"]
    fields: dict[str, Any] = {}
    for p in params:
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (hints[p.name], default)
    model = create_model(f"{name}_params", __config__=ConfigDict(extra="forbid"), **fields)
    return Call(
        name=name,
        path=f"{path}/{name}",
        signature=full.replace(parameters=params),
        types=hints,
        params=model,
        result=TypeAdapter(hints["return"]),
        quiet=getattr(fn, "__shardbox_quiet__", False),
        doc=inspect.getdoc(fn) or "",
    )


@functools.cache
def calls() -> dict[str, Call]:
    """Every declared call by name (derived once per process)."""
    found: dict[str, Call] = {}
    for protocol, path in GROUPS:
        for name, fn in vars(protocol).items():
            if name.startswith("_") or not inspect.iscoroutinefunction(fn):
                continue
            if name in found:
                raise TypeError(f"coordinator call {name!r} is declared twice")
            found[name] = _call(name, fn, path)
    return found
