"""The metadata schema: every table, in one place, for SQLite and PostgreSQL alike.

Queries live in the other modules of this package; they only import the tables from here.
The database itself is created and changed only by the migrations in coordinator/migrations
(applied at start by coordinator/migrate.py); a test keeps the two in step.
Manifest rows (object_chunks, upload_part_chunks) have no foreign key to chunks: the
refcount is what keeps a referenced chunk alive, and an FK there would make every chunk
row deletion by GC scan the largest table (or need another index on it).

Object keys, bucket names and chunk keys use the binary "C" collation on PostgreSQL so that
ORDER BY gives the same UTF-8 byte order S3 clients expect (SQLite's default BINARY
collation already compares bytes).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()


def _ckey(length: int) -> sa.types.TypeEngine:
    """A string compared byte by byte on both backends."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite INTEGER is 64-bit already
_TIME = sa.Float(precision=53)  # unix seconds
_ID = sa.String(64)  # generated ids (uuid4 hex); free-form input goes in Text columns

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("tenant_id", _ID, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("quota_bytes", _BIG, nullable=False),
    sa.Column("used_bytes", _BIG, nullable=False, default=0),
    sa.Column("reserved_bytes", _BIG, nullable=False, default=0),
    sa.Column("created_at", _TIME, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", _ID, primary_key=True),
    sa.Column("tenant_id", _ID, sa.ForeignKey("tenants.tenant_id"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", _TIME, nullable=False),
    # The product's accounts (coordinator/accounts.py). Columns added to a table that holds
    # data come with a server default (SQLite adds them in place that way).
    sa.Column("password_hash", sa.Text),  # argon2id, PHC string; NULL: no password login
    # The user's own quota over their drive (NULL: only the tenant's applies); used counts
    # every version kept in the drive, reserved the product uploads in flight.
    sa.Column("quota_bytes", _BIG),
    sa.Column("used_bytes", _BIG, nullable=False, server_default=sa.text("0")),
    sa.Column("reserved_bytes", _BIG, nullable=False, server_default=sa.text("0")),
)

access_keys = sa.Table(
    "access_keys",
    metadata,
    sa.Column("access_key", sa.String(32), primary_key=True),
    # Stored as is: SigV4 verification needs the secret itself (HMAC), not a hash of it.
    sa.Column("secret_key", sa.String(64), nullable=False),
    sa.Column("user_id", _ID, sa.ForeignKey("users.user_id"), nullable=False, index=True),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", _TIME, nullable=False),
)

buckets = sa.Table(
    "buckets",
    metadata,
    sa.Column("name", _ckey(63), primary_key=True),
    sa.Column("tenant_id", _ID, sa.ForeignKey("tenants.tenant_id"), nullable=False, index=True),
    sa.Column("owner_id", sa.Text, nullable=False),
    sa.Column("region", sa.Text, nullable=False),
    sa.Column("created_at", _TIME, nullable=False),
    # S3 versioning: NULL (never enabled), "Enabled" or "Suspended" (never NULL again).
    sa.Column("versioning", sa.String(16)),
    sa.Column("acl", sa.String(32)),  # canned ACL; NULL is private
    sa.Column("cors", sa.JSON),  # the CORS rules (gateway/s3/cors.py), NULL when none
    # Authenticated S3 reads of objects still being scanned answer 425 too (they are allowed
    # by default: backup tools read what they just wrote).
    sa.Column("scan_gate", sa.Boolean, nullable=False, server_default=sa.false()),
)

object_versions = sa.Table(
    "object_versions",
    metadata,
    sa.Column("version_id", _ID, primary_key=True),
    sa.Column("bucket", _ckey(63), sa.ForeignKey("buckets.name"), nullable=False),
    sa.Column("key", _ckey(1024), nullable=False),
    sa.Column("tenant_id", _ID, nullable=False),
    sa.Column("owner_id", sa.Text, nullable=False),
    sa.Column("size", _BIG, nullable=False),
    sa.Column("etag", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("headers", sa.JSON, nullable=False),
    sa.Column("storage_class", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # uploading|scanning|ready|quarantined|deleted
    sa.Column("checksums", sa.JSON, nullable=False),
    sa.Column("part_count", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", _TIME, nullable=False),
    sa.Column("last_modified", _TIME, nullable=False),
    sa.Column("last_access", _TIME),
    sa.Column("is_latest", sa.Boolean, nullable=False),
    # The version model (docs/internals.md "Object versions"). Columns added to a table
    # that holds data come with a server default: SQLite adds them in place that way
    # (rebuilding the table would cascade-delete its manifests).
    # Position among the key's versions, newest highest: max(previous + 1, now in microseconds),
    # assigned under the key's lock, so it is commit order; version ids embed it (hex).
    sa.Column("seq", _BIG, nullable=False, server_default=sa.text("0")),
    # S3 shows this version's id as "null": written while versioning was never enabled or
    # suspended. At most one per key.
    sa.Column("null_version", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("delete_marker", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("tags", sa.JSON),  # S3 object tags {key: value}, NULL when none
    sa.Column("acl", sa.String(32)),  # canned ACL; NULL is private
    # What wrote this version, so that a request retried because its answer was lost gets
    # that answer again instead of an error or a second version (coordinator/versions.py):
    # "upload:<id>" (the multipart upload it completes) or "sdk:<invocation id>".
    sa.Column("write_id", sa.String(80)),
    # The malware scan's answer ("clean", "infected: NAME", "unscanned: too large (...)"),
    # when, and by which scanner (coordinator/scans.py).
    sa.Column("scan_result", sa.Text),
    sa.Column("scanned_at", _TIME),
    sa.Column("scanner", sa.Text),
    # For the foreign key check when a bucket is deleted.
    sa.Index("ix_object_bucket", "bucket"),
    # A key's versions newest first (ListObjectVersions, the next latest after a delete).
    sa.Index("ux_object_key_seq", "bucket", "key", "seq", unique=True),
    sa.Index(
        "ux_object_null",
        "bucket",
        "key",
        unique=True,
        sqlite_where=sa.text("null_version = 1"),
        postgresql_where=sa.text("null_version"),
    ),
    sa.Index("ix_object_write_id", "bucket", "key", "write_id"),
    # One latest version per key; listing walks this index in key order. The SQLite
    # predicate is spelled as SQLAlchemy renders `is_latest` in queries, or SQLite's
    # planner would not use the partial index.
    sa.Index(
        "ux_object_latest",
        "bucket",
        "key",
        unique=True,
        sqlite_where=sa.text("is_latest = 1"),
        postgresql_where=sa.text("is_latest"),
    ),
    # The scan backlog: only versions waiting for their scan are in it.
    sa.Index(
        "ix_object_scanning",
        "created_at",
        sqlite_where=sa.text("status = 'scanning'"),
        postgresql_where=sa.text("status = 'scanning'"),
    ),
)

object_chunks = sa.Table(
    "object_chunks",
    metadata,
    sa.Column(
        "version_id", _ID, sa.ForeignKey("object_versions.version_id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("chunk_key", _ckey(64), nullable=False),  # no FK: refcounts guard it, see module doc
    sa.Column("offset", _BIG, nullable=False),
    sa.Column("size", _BIG, nullable=False),
    # Ranged reads select the chunks overlapping a byte range (coordinator/chunkrefs.py).
    sa.Index("ix_object_chunks_offset", "version_id", "offset"),
)

object_parts = sa.Table(
    "object_parts",
    metadata,
    sa.Column(
        "version_id", _ID, sa.ForeignKey("object_versions.version_id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("part_number", sa.Integer, primary_key=True),
    sa.Column("offset", _BIG, nullable=False),
    sa.Column("size", _BIG, nullable=False),
    sa.Column("etag", sa.Text, nullable=False),
    sa.Column("checksums", sa.JSON, nullable=False),
    sa.Column("last_modified", _TIME, nullable=False),
)

chunks = sa.Table(
    "chunks",
    metadata,
    sa.Column("chunk_key", _ckey(64), primary_key=True),
    sa.Column("scope", _ID, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", _BIG, nullable=False),
    sa.Column("enc_size", _BIG, nullable=False),
    sa.Column("key_id", sa.Text, nullable=False),
    sa.Column("refcount", _BIG, nullable=False),
    sa.Column("created_at", _TIME, nullable=False),
    sa.Column("zero_since", _TIME, index=True),  # set when refcount reaches 0 (GC candidates)
    # Set while GC deletes the chunk's shards (coordinator/gc.py): from then on nothing may
    # reference the chunk again; the row goes once the shards are gone.
    sa.Column("gc_worker", sa.Text),
    sa.Column("gc_lease_until", _TIME),
    # The ciphertext of a small chunk kept in the database instead of as 14 shards; such a
    # chunk has no chunk_shards rows.
    sa.Column("inline_data", sa.LargeBinary),
    # Storage format of the chunk's bytes (ChunkRef.format): 1 for chunks of the first release.
    sa.Column("format", sa.SmallInteger, nullable=False, server_default="1"),
    # The tier whose pool the chunk's shards belong in (config/tiers.py); repair moves shards
    # that sit elsewhere (coordinator/tiers.py changes it).
    sa.Column("tier", sa.String(16), nullable=False, server_default="STANDARD"),
)

chunk_shards = sa.Table(
    "chunk_shards",
    metadata,
    sa.Column(
        "chunk_key", _ckey(64), sa.ForeignKey("chunks.chunk_key", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("node_id", sa.String(64), nullable=False),
    sa.Column("checksum", sa.Text),
    # A node's shards (repair of a lost node, per-node counts), and which of a page of shard
    # ids a node lists are placed there (reconciliation): `node_id = ? AND chunk_key IN (...)`
    # is one index search per key. With an index on node_id alone, SQLite (no statistics)
    # chose it for that query and read every shard of the node for every page.
    sa.Index("ix_chunk_shards_node_chunk", "node_id", "chunk_key", "idx"),
)

upload_sessions = sa.Table(
    "upload_sessions",
    metadata,
    sa.Column("upload_id", _ckey(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # put | multipart
    sa.Column("tenant_id", _ID, sa.ForeignKey("tenants.tenant_id"), nullable=False),
    sa.Column("owner_id", sa.Text, nullable=False),
    sa.Column("bucket", _ckey(63), sa.ForeignKey("buckets.name"), nullable=False),
    sa.Column("key", _ckey(1024), nullable=False),
    sa.Column("reserved_bytes", _BIG, nullable=False),
    sa.Column("content_type", sa.Text),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("headers", sa.JSON, nullable=False),
    sa.Column("storage_class", sa.Text, nullable=False),
    sa.Column("checksum_algorithm", sa.Text),
    sa.Column("tags", sa.JSON),  # given to the version it completes into
    sa.Column("acl", sa.String(32)),
    # The SDK call that began it: a retried CreateMultipartUpload gets this session again.
    sa.Column("write_id", sa.String(80)),
    sa.Column("initiated", _TIME, nullable=False),
    sa.Column("expires_at", _TIME, nullable=False, index=True),
    sa.Index("ix_upload_bucket_key", "bucket", "key", "upload_id"),
)

upload_parts = sa.Table(
    "upload_parts",
    metadata,
    sa.Column(
        "upload_id",
        _ckey(64),
        sa.ForeignKey("upload_sessions.upload_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("part_number", sa.Integer, primary_key=True),
    sa.Column("size", _BIG, nullable=False),
    sa.Column("etag", sa.Text, nullable=False),
    sa.Column("checksums", sa.JSON, nullable=False),
    sa.Column("last_modified", _TIME, nullable=False),
)

upload_part_chunks = sa.Table(
    "upload_part_chunks",
    metadata,
    sa.Column("upload_id", _ckey(64), primary_key=True),
    sa.Column("part_number", sa.Integer, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("chunk_key", _ckey(64), nullable=False),  # no FK: refcounts guard it, see module doc
    sa.Column("size", _BIG, nullable=False),
    sa.ForeignKeyConstraint(
        ["upload_id", "part_number"],
        ["upload_parts.upload_id", "upload_parts.part_number"],
        ondelete="CASCADE",
    ),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", _TIME, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("client_addr", sa.Text),
    # The object version a row is about (downloads, scans): a quarantine lists who
    # downloaded the version before through this index.
    sa.Column("version_id", _ID, index=True),
)

# `shardbox admin scan --rescan`: versions created since `since` are scanned again, in
# version id order from `cursor`, by one worker at a time at a bounded rate.
rescans = sa.Table(
    "rescans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("since", _TIME, nullable=False),
    sa.Column("requested_at", _TIME, nullable=False),
    sa.Column("requested_by", sa.Text, nullable=False),
    sa.Column("cursor", _ID, nullable=False, server_default=""),
    sa.Column("scanned", _BIG, nullable=False, server_default=sa.text("0")),
    sa.Column("found", _BIG, nullable=False, server_default=sa.text("0")),
    sa.Column("finished_at", _TIME),
    sqlite_autoincrement=True,
)

# Pending background work. A worker claims a row with a lease (claimed_by, lease_until),
# deletes it once handled, or puts it back for a later attempt (available_at) and parks it
# after too many (parked_at): coordinator/workqueue.py.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", _TIME, nullable=False),
    sa.Column("claimed_by", sa.Text),
    sa.Column("claimed_at", _TIME),
    sa.Column("done_at", _TIME),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("lease_until", _TIME),
    sa.Column("available_at", _TIME),  # not before (retry backoff); NULL: now
    sa.Column("last_error", sa.Text),
    sa.Column("parked_at", _TIME),  # set after too many attempts; an operator replays it
    sa.Index("ix_outbox_pending", "event_type", "done_at", "id"),
    # Ids are never reused (handled events are deleted): a late answer about an old event
    # must not touch a new one, and operators name parked events by id.
    sqlite_autoincrement=True,
)

# Named cluster-wide leases: a periodic job (GC sweep, reconciliation, a rescan) runs on one
# worker at a time, and its state (a cursor, when it may run next) outlives that worker.
worker_leases = sa.Table(
    "worker_leases",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("holder", sa.Text),
    sa.Column("lease_until", _TIME),
    sa.Column("not_before", _TIME),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("updated_at", _TIME, nullable=False),
)

# Shards found on nodes that no metadata references (a killed upload's, a moved shard's old
# copy): noted by reconciliation, deleted once they have stayed unreferenced for the GC grace
# period (coordinator/gc.py). `pass_id` is the reconciliation pass that saw it last.
gc_orphans = sa.Table(
    "gc_orphans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("node_id", sa.String(64), nullable=False),
    sa.Column("shard_id", sa.String(200), nullable=False),
    sa.Column("chunk_key", _ckey(64), nullable=False, index=True),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("first_seen", _TIME, nullable=False),
    sa.Column("pass_id", sa.String(64), nullable=False),
    sa.Column("claimed_by", sa.Text),
    sa.Column("lease_until", _TIME),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.UniqueConstraint("node_id", "shard_id", name="uq_gc_orphans_node_shard"),
    sqlite_autoincrement=True,
)

nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("node_id", sa.String(64), primary_key=True),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("pool", sa.Text, nullable=False),
    sa.Column("host", sa.Text),
    sa.Column("rack", sa.Text),
    sa.Column("capacity_bytes", _BIG, nullable=False),
    sa.Column("free_bytes", _BIG, nullable=False),
    sa.Column("used_bytes", _BIG, nullable=False),
    sa.Column("shard_count", _BIG, nullable=False),
    sa.Column("last_seen", _TIME, nullable=False),
    # Administrative state; "down" is also derived on read from last_seen.
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("health", sa.JSON, nullable=False),  # the node's last /health document
    # The storage class of the node's pool (coordinator/tiers.py): placement puts a chunk on
    # nodes of the class its objects need.
    sa.Column("storage_class", sa.String(16), nullable=False, server_default="STANDARD"),
    # When the repair of everything on this node was queued (down past the grace period,
    # drained or removed); cleared when it heartbeats again while up.
    sa.Column("repair_queued_at", _TIME),
    # When a repair claim first found the node silent; the down grace period counts from here
    # (not from last_seen), so a coordinator back from an outage, or a clock that jumped, does
    # not find every node overdue at once. Cleared by its next heartbeat.
    sa.Column("down_since", _TIME),
)

repair_queue = sa.Table(
    "repair_queue",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("chunk_key", _ckey(64), nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("node_id", sa.Text),
    sa.Column("created_at", _TIME, nullable=False),
    # A worker's claim (coordinator/repairs.py): until lease_until nobody else takes the row.
    sa.Column("claimed_by", sa.Text),
    sa.Column("lease_until", _TIME),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("not_before", _TIME),  # retry backoff after a failed attempt
    sa.Column("last_error", sa.Text),
    sa.UniqueConstraint("chunk_key", "idx", name="uq_repair_chunk_idx"),
)

# What repair did, for its rate and `shardbox admin repair status` (pruned after a week).
repair_log = sa.Table(
    "repair_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", _TIME, nullable=False, index=True),
    sa.Column("chunk_key", _ckey(64), nullable=False),
    sa.Column("shards", sa.Integer, nullable=False),
    sa.Column("bytes", _BIG, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

# A bucket's lifecycle configuration (coordinator/lifecycle.py), rules as parsed by the gateway.
bucket_lifecycle = sa.Table(
    "bucket_lifecycle",
    metadata,
    sa.Column("bucket", _ckey(63), sa.ForeignKey("buckets.name", ondelete="CASCADE"), primary_key=True),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("updated_at", _TIME, nullable=False),
)

# RestoreObject of a COLD version: `ongoing` while its chunks move back to STANDARD nodes,
# then `done` until expires_at, when the lifecycle pass sends them back to COLD.
object_restores = sa.Table(
    "object_restores",
    metadata,
    sa.Column(
        "version_id", _ID, sa.ForeignKey("object_versions.version_id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("requested_at", _TIME, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # ongoing | done
    sa.Column("expires_at", _TIME),
)

# Per tenant and calendar month (UTC, "YYYY-MM"): what billing needs besides stored bytes.
usage_counters = sa.Table(
    "usage_counters",
    metadata,
    sa.Column("tenant_id", _ID, primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("api_requests", _BIG, nullable=False, server_default="0"),
    sa.Column("egress_bytes", _BIG, nullable=False, server_default="0"),
    sa.Column("ingress_bytes", _BIG, nullable=False, server_default="0"),
    sa.Column("scan_calls", _BIG, nullable=False, server_default="0"),
)


# ---- the product (accounts, uploads, files, sharing): see docs/internals.md "Product API" ----

# File ids are object keys of the drive's bucket too: compared byte by byte like keys, so the
# two join without a collation conflict on PostgreSQL.
_FID = _ckey(64)

auth_tokens = sa.Table(
    "auth_tokens",
    metadata,
    # SHA-256 hex of the bearer token: the token itself is never stored.
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("token_id", _ID, nullable=False, unique=True),  # what listings and revocation name
    sa.Column("user_id", _ID, sa.ForeignKey("users.user_id"), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # session | api
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("created_at", _TIME, nullable=False),
    sa.Column("expires_at", _TIME),  # NULL: until revoked
    sa.Column("client_addr", sa.Text),
)

login_attempts = sa.Table(
    "login_attempts",
    metadata,
    # "p:<user>|<address>" (one user from one address) or "a:<address>" (any user from it),
    # or the same for a share link's password ("l:<link>|<address>").
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("window_start", _TIME, nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False),
)

files = sa.Table(
    "files",
    metadata,
    # A file or folder of a user's drive (coordinator/drive.py). Its content is the object
    # versions of key `file_id` in the drive's bucket, so rename and move change this row only.
    sa.Column("file_id", _FID, primary_key=True),
    sa.Column("tenant_id", _ID, sa.ForeignKey("tenants.tenant_id"), nullable=False),
    sa.Column("owner_id", _ID, sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("parent_id", _FID, nullable=False),  # the folder holding it; "" for a drive's root
    sa.Column("name", _ckey(1024), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # folder | file
    sa.Column("created_at", _TIME, nullable=False),
    sa.Column("updated_at", _TIME, nullable=False),
    sa.Column("trashed_at", _TIME),  # in the trash since (its subtree with it)
    # One live name per folder; trashed entries step aside for a new one of the same name.
    sa.Index(
        "ux_files_name",
        "owner_id",
        "parent_id",
        "name",
        unique=True,
        sqlite_where=sa.text("trashed_at IS NULL"),
        postgresql_where=sa.text("trashed_at IS NULL"),
    ),
    sa.Index("ix_files_listing", "parent_id", "kind", "name"),
    sa.Index("ix_files_trash", "owner_id", "trashed_at"),
)

product_uploads = sa.Table(
    "product_uploads",
    metadata,
    # What a product upload session (upload_sessions, kind "product") will become.
    sa.Column(
        "upload_id",
        _ckey(64),
        sa.ForeignKey("upload_sessions.upload_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("user_id", _ID, nullable=False),  # who uploads (the drive's owner or a grantee)
    sa.Column("file_id", _FID),  # a new version of this file, or NULL: a file at parent_id/path
    sa.Column("parent_id", _FID),  # the deepest folder of the path that existed at init
    sa.Column("path", sa.JSON, nullable=False),  # names below parent_id, the file's name last
    sa.Column("size", _BIG, nullable=False),
    sa.Column("chunk_size", _BIG, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("chunks", sa.JSON, nullable=False),  # SHA-256 hex of each chunk, in order
    sa.Column("content_type", sa.Text),
)

upload_chunk_refs = sa.Table(
    "upload_chunk_refs",
    metadata,
    # A reference an open product upload holds on each distinct chunk it has (found stored at
    # init, or PUT since), so GC keeps it until finalize hands it to the file's version.
    sa.Column(
        "upload_id",
        _ckey(64),
        sa.ForeignKey("upload_sessions.upload_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("chunk_key", _ckey(64), primary_key=True),  # no FK: refcounts guard it
    sa.Column("sha256", sa.String(64), nullable=False),
)

grants = sa.Table(
    "grants",
    metadata,
    sa.Column("grant_id", _ID, primary_key=True),
    sa.Column("file_id", _FID, sa.ForeignKey("files.file_id", ondelete="CASCADE"), nullable=False),
    sa.Column("grantee_id", _ID, sa.ForeignKey("users.user_id"), nullable=False, index=True),
    sa.Column("permission", sa.String(8), nullable=False),  # view | edit
    sa.Column("created_at", _TIME, nullable=False),
    sa.UniqueConstraint("file_id", "grantee_id", name="uq_grants_file_grantee"),
)

share_links = sa.Table(
    "share_links",
    metadata,
    sa.Column("link_id", _ID, primary_key=True),
    # SHA-256 hex of the 192-bit token: the token itself is never stored.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("file_id", _FID, sa.ForeignKey("files.file_id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("owner_id", _ID, sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("permission", sa.String(8), nullable=False),  # view | download
    sa.Column("created_at", _TIME, nullable=False),
    sa.Column("expires_at", _TIME),
    sa.Column("password_hash", sa.Text),  # argon2id PHC string
    sa.Column("max_downloads", sa.Integer),
    sa.Column("download_count", sa.Integer, nullable=False, default=0),
    sa.Column("revoked_at", _TIME),
    sa.Column("revoked_reason", sa.String(16)),  # owner | quarantine | deleted
    sa.Index("ix_share_links_owner", "owner_id", "revoked_at"),
)

share_link_downloads = sa.Table(
    "share_link_downloads",
    metadata,
    # Every transfer of a link's last byte: a reservation while it runs (finished_at NULL),
    # the download itself once complete. max_downloads counts both (stale reservations aside).
    sa.Column("download_id", _ID, primary_key=True),
    sa.Column("link_id", _ID, sa.ForeignKey("share_links.link_id", ondelete="CASCADE"), nullable=False),
    sa.Column("version_id", _ID, nullable=False),
    sa.Column("started_at", _TIME, nullable=False),
    sa.Column("finished_at", _TIME),
    sa.Column("client_addr", sa.Text),
    sa.Index("ix_share_link_downloads_link", "link_id", "finished_at"),
)
