"""Typed configuration for every shardbox role, loaded from one TOML file.

A process reads the whole file but only the sections its role needs must be
present; `load_config(path, role)` checks that up front so a misconfigured
process stops at start with a readable message instead of failing mid-request.
"""

from __future__ import annotations

import base64
import tomllib
import urllib.parse
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.tiers import STANDARD, pool_tier

Role = Literal["node", "coordinator", "gateway", "worker"]


class ConfigError(Exception):
    """Raised with a human-readable explanation of what is wrong in a config file."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return value


def _check_service_url(value: str | None) -> str | None:
    """Services talk plain HTTP/1.1 to each other (config.internal_http): http://HOST[:PORT][/path]."""
    if value is None:
        return value
    parsed = urllib.parse.urlsplit(value)
    try:
        parsed.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError(f"expected http://HOST:PORT, got {value!r}") from None
    if parsed.scheme != "http" or not parsed.hostname:
        raise ValueError(f"expected http://HOST:PORT, got {value!r}")
    return value


def _check_public_url(value: str | None) -> str | None:
    if value is None:
        return value
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
        raise ValueError(f"expected http(s)://HOST[:PORT][/path], got {value!r}")
    return value.rstrip("/")


class ClusterSection(_Section):
    """Secrets shared by every process of one cluster."""

    secret: str = Field(min_length=16, description="shared secret for the inter-service credential")
    master_key: str | None = Field(
        default=None, description="base64 of 32 bytes; chunk data keys derive from it (gateway only)"
    )

    @field_validator("master_key")
    @classmethod
    def _master_key_is_32_bytes(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise ValueError("master_key must be base64") from exc
        if len(raw) != 32:
            raise ValueError(f"master_key must decode to 32 bytes, got {len(raw)}")
        return value

    def master_key_bytes(self) -> bytes:
        if self.master_key is None:
            raise ConfigError("[cluster] master_key is required for the gateway")
        return base64.b64decode(self.master_key)


class ServerTimeouts(_Section):
    """How long a server waits on a client before it closes the connection
    (`[node.timeouts]`, `[coordinator.timeouts]`, `[gateway.timeouts]`).

    Each bounds what one slow or silent client can hold: a connection, a request slot, the
    buffers of an upload. They apply to a client's pauses, never to the server's own work:
    a body whose reading the server has paused (its buffers are full while shards are
    written) does not count as idle, nor does a client waiting for `100 Continue`.
    """

    header_s: float = Field(default=15.0, gt=0.0,
                            description="from a connection's start or a request's first byte to its "
                                        "complete head; then 408 and close")
    body_idle_s: float = Field(default=30.0, gt=0.0,
                               description="longest pause of a request body the server is reading; "
                                           "then 400 RequestTimeout (408 internally) and close")
    keepalive_s: float = Field(default=60.0, ge=1.0,
                               description="idle time between requests on a keep-alive connection")
    send_idle_s: float = Field(default=60.0, gt=0.0,
                               description="longest time a client may leave an answer unread; then close")


class NodeSection(_Section):
    """One storage node: one data directory, usually one disk."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    listen: str
    data_dir: Path
    advertise: str | None = Field(default=None, description="base URL others use; default http://listen")
    volume_size: int = Field(default=1 << 30, ge=1 << 20)
    max_shard_size: int = Field(default=64 << 20, ge=1024)
    capacity_bytes: int | None = Field(default=None, ge=0, description="cap below the disk size")
    reserve_bytes: int = Field(default=64 << 20, ge=0,
                               description="free space kept back; below it PUT is 507")
    compact_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    scrub_interval_s: float = Field(default=86400.0, ge=0.0, description="0 disables periodic scrub")
    scrub_rate_mb_s: float = Field(default=50.0, gt=0.0)
    group_commit_ms: float = Field(default=2.0, ge=0.0)
    pool: str = Field(default="standard", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                      description="pool name, shown by `admin health`; standard, ia or cold name a tier")
    storage_class: Literal["STANDARD", "STANDARD_IA", "COLD"] | None = Field(
        default=None, description="the pool's tier (config/tiers.py); default: the one the pool name says, "
                                  "else STANDARD")
    host: str | None = None
    rack: str | None = None
    coordinator: str | None = Field(default=None, description="coordinator base URL for heartbeats")
    _v_coordinator = field_validator("coordinator")(classmethod(lambda cls, v: _check_service_url(v)))
    heartbeat_s: float = Field(default=5.0, gt=0.0)
    timeouts: ServerTimeouts = ServerTimeouts()

    _v_listen = field_validator("listen")(classmethod(lambda cls, v: _check_listen(v)))

    def base_url(self) -> str:
        return self.advertise or f"http://{self.listen}"

    def tier(self) -> str:
        return self.storage_class or pool_tier(self.pool) or STANDARD


class CoordinatorSection(_Section):
    """Metadata service: database, placement, node registry."""

    listen: str
    database_url: str = Field(description="sqlite+aiosqlite:///PATH or postgresql+asyncpg://...")
    node_down_after_s: float = Field(default=30.0, gt=0.0)
    node_repair_after_s: float = Field(default=600.0, ge=0.0,
                                       description="a node down this long has its shards rebuilt elsewhere")
    tier_min_bytes: int = Field(default=128 << 10, ge=0,
                                description="objects smaller than this are never moved to a colder tier")
    upload_expiry_s: float = Field(default=7 * 86400.0, gt=0.0)
    gc_grace_s: float = Field(default=86400.0, ge=0.0,
                              description="unreferenced chunks and orphan shards are kept this long")
    scan_new_objects: bool = Field(default=False,
                                   description="new objects are `scanning` until a worker's scanner "
                                               "marks them ready or quarantined (else ready at once)")
    dedup_scope: Literal["tenant", "global"] = "tenant"
    default_quota_bytes: int = Field(default=1 << 50, ge=0)
    # The product API (coordinator/product_rules.py).
    product_upload_expiry_s: float = Field(default=86400.0, gt=0.0,
                                           description="unfinished product uploads expire after this")
    trash_retention_s: float = Field(default=30 * 86400.0, ge=0.0,
                                     description="trashed files can be restored this long")
    login_window_s: float = Field(default=900.0, gt=0.0, description="login attempts are counted per window")
    login_attempts_per_user_address: int = Field(default=10, ge=1)
    login_attempts_per_address: int = Field(default=100, ge=1)
    link_password_attempts: int = Field(default=20, ge=1,
                                        description="share-link password tries per link and address")
    timeouts: ServerTimeouts = ServerTimeouts()

    _v_listen = field_validator("listen")(classmethod(lambda cls, v: _check_listen(v)))

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("database_url must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value


class GatewaySection(_Section):
    """S3 and product API front end; stateless."""

    listen: str
    coordinator: str = Field(description="coordinator base URL")
    _v_coordinator = field_validator("coordinator")(classmethod(lambda cls, v: _check_service_url(v)))
    region: str = "us-east-1"
    domain: str | None = Field(default=None, description="enables virtual-host-style bucket.DOMAIN")
    chunk_size: int = Field(default=8 << 20, ge=64 << 10, le=8 << 20)
    inline_max_bytes: int = Field(default=32 << 10, ge=0, le=256 << 10,
                                  description="objects up to this size live in the metadata DB, not on nodes")
    shard_timeout_s: float = Field(default=10.0, gt=0.0)
    min_acks: int = Field(default=12, ge=10, le=14)
    max_chunks_in_flight: int = Field(
        default=3, ge=1, le=64, description="chunks written (and, apart, fetched) at once across all "
        "requests; each holds about 2.5 x chunk_size of memory")
    storage_format: Literal[1, 2] = Field(
        default=2, description="format new chunks are written in (both are always read): 2, or 1 while "
        "gateways of the first release, which cannot read 2, still serve reads during an upgrade")
    max_skew_s: int = Field(default=900, ge=1)
    key_cache_s: float = Field(default=30.0, ge=0.0)
    # The product API (gateway/api).
    public_url: str | None = Field(default=None, description="base URL of share links and signed URLs "
                                   "(e.g. https://files.example.com); default: the request's own host")
    session_ttl_s: float = Field(default=14 * 86400.0, gt=0.0, le=366 * 86400.0,
                                 description="web sessions last this long (at most a year)")
    cookie_secure: bool = Field(default=False, description="mark session cookies Secure (serve over HTTPS)")
    url_ttl_s: float = Field(default=900.0, gt=0.0, le=7 * 86400.0,
                             description="lifetime of a signed download URL")
    upload_url_ttl_s: float = Field(default=6 * 3600.0, gt=0.0, le=7 * 86400.0,
                                    description="lifetime of a signed chunk upload URL")
    url_keys: dict[str, str] = Field(default_factory=dict, description="signing keys of signed URLs by key "
                                     "id (base64, >= 32 bytes); default: one derived from the cluster secret")
    url_key_id: str | None = Field(default=None, description="the key id new URLs are signed with")
    chunk_cache_bytes: int = Field(default=256 << 20, ge=0, description="recently read chunks kept for "
                                   "hot share links (0: off)")
    link_cache_max_age_s: int = Field(default=0, ge=0, le=86400,
                                      description="Cache-Control max-age of share-link bytes (0: no-cache, "
                                      "a CDN revalidates every request)")
    max_chunk_puts: int = Field(default=8, ge=1, le=256,
                                description="chunk uploads buffered at once (a chunk each)")
    timeouts: ServerTimeouts = ServerTimeouts()

    _v_listen = field_validator("listen")(classmethod(lambda cls, v: _check_listen(v)))
    _v_public_url = field_validator("public_url")(classmethod(lambda cls, v: _check_public_url(v)))

    @field_validator("url_keys")
    @classmethod
    def _url_keys_are_long(cls, value: dict[str, str]) -> dict[str, str]:
        for kid, key in value.items():
            if not kid or len(kid) > 16 or not kid.isalnum():
                raise ValueError(f"url key id {kid!r} must be 1-16 letters or digits")
            try:
                raw = base64.b64decode(key, validate=True)
            except ValueError as exc:
                raise ValueError(f"url key {kid!r} must be base64") from exc
            if len(raw) < 32:
                raise ValueError(f"url key {kid!r} must decode to at least 32 bytes")
        return value

    @model_validator(mode="after")
    def _url_key_id_known(self) -> GatewaySection:
        if self.url_keys and self.url_key_id not in self.url_keys:
            raise ValueError("url_key_id must name one of url_keys (the key new URLs are signed with)")
        if not self.url_keys and self.url_key_id is not None:
            raise ValueError("url_key_id needs url_keys")
        return self


class ScanSection(_Section):
    """`[worker.scan]`: which malware scanner this worker runs and how."""

    backend: Literal["builtin", "clamd", "none"] = Field(
        default="builtin", description="builtin: EICAR + SHA-256 blocklist; clamd: a ClamAV daemon; "
                                       "none: this worker scans nothing")
    clamd_socket: Path | None = Field(default=None, description="clamd's LocalSocket (unix socket)")
    clamd_address: str | None = Field(default=None, description="clamd's TCPAddr:TCPSocket, HOST:PORT")
    clamd_timeout_s: float = Field(default=600.0, gt=0.0, description="longest silence of clamd mid-scan")
    max_scan_bytes: int | None = Field(
        default=None, ge=0, description="objects larger than this are not sent to the scanner "
                                        "(clamd's own StreamMaxLength is found when it answers)")
    too_large: Literal["ready", "quarantine"] = Field(
        default="ready", description="status of an object the scanner cannot take whole; its scan "
                                     "result says `unscanned: too large` either way")
    blocklist: Path | None = Field(default=None, description="file of SHA-256 hex digests (one per line, "
                                                             "# comments) the builtin scanner flags")
    concurrency: int = Field(default=2, ge=1, le=64, description="objects scanned at once")
    rescan_objects_per_s: float = Field(default=5.0, gt=0.0)
    rescan_mb_per_s: float = Field(default=50.0, gt=0.0)

    _v_address = field_validator("clamd_address")(
        classmethod(lambda cls, v: v if v is None else _check_listen(v)))


class GcSection(_Section):
    """`[worker.gc]`: garbage collection, expiry, reconciliation and compaction."""

    interval_s: float = Field(default=60.0, gt=0.0, description="how often to look for chunks past grace")
    batch_chunks: int = Field(default=100, ge=1, le=5000, description="chunks per claim and delete round")
    max_chunks_per_s: float = Field(default=200.0, gt=0.0,
                                    description="delete rate cap (~5.8 TB a day of 8 MiB chunks), so a 10 TB "
                                                "delete cannot stall the metadata store or the nodes")
    expiry_interval_s: float = Field(default=300.0, gt=0.0, description="expired upload sessions")
    reconcile_interval_s: float = Field(default=6 * 3600.0, gt=0.0,
                                        description="listing nodes for shards no metadata references")
    reconcile_shards_per_s: float = Field(default=5000.0, gt=0.0)
    compact_interval_s: float = Field(default=3600.0, gt=0.0,
                                      description="a node that had shards deleted is compacted at most "
                                                  "this often")


class RepairSection(_Section):
    """`[worker.repair]`: rebuilding and moving shards (workers/repair.py)."""

    enabled: bool = True
    rate_mb_s: float = Field(default=100.0, gt=0.0, description="shard MB read + written per second, at most")
    concurrency: int = Field(default=4, ge=1, le=64, description="chunks repaired at once")
    batch: int = Field(default=16, ge=1, le=256, description="chunks claimed at a time")
    lease_s: float = Field(default=300.0, ge=10.0, le=86400.0,
                           description="a claimed chunk goes to another worker after this long")


class LifecycleSection(_Section):
    """`[worker.lifecycle]`: bucket lifecycle rules and restores (workers/lifecycle.py)."""

    enabled: bool = True
    interval_s: float = Field(default=300.0, gt=0.0, description="how often the lifecycle pass runs")
    batch: int = Field(default=1000, ge=1, le=100_000, description="objects per pass step")


class WorkerSection(_Section):
    """Background worker: claims work from the coordinator, reads and writes bytes on nodes."""

    coordinator: str = Field(description="coordinator base URL")
    _v_coordinator = field_validator("coordinator")(classmethod(lambda cls, v: _check_service_url(v)))
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$",
                           description="default: host name and process id")
    lease_s: float = Field(default=60.0, ge=1.0, le=3600.0,
                           description="a claim held this long without renewal goes to another worker")
    max_attempts: int = Field(default=8, ge=1, le=1000, description="then the event is parked")
    retry_base_s: float = Field(default=2.0, gt=0.0)
    retry_max_s: float = Field(default=600.0, gt=0.0)
    poll_s: float = Field(default=1.0, gt=0.0, le=60.0, description="idle wait between claims")
    shard_timeout_s: float = Field(default=10.0, gt=0.0)
    scan: ScanSection = ScanSection()
    gc: GcSection = GcSection()
    repair: RepairSection = RepairSection()
    lifecycle: LifecycleSection = LifecycleSection()


class Config(_Section):
    cluster: ClusterSection
    node: NodeSection | None = None
    coordinator: CoordinatorSection | None = None
    gateway: GatewaySection | None = None
    worker: WorkerSection | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid configuration"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def parse_config(data: dict, source: Path | str = "<config>", role: Role | None = None) -> Config:
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(Path(source), exc)) from None
    if role is not None and getattr(cfg, role) is None:
        raise ConfigError(f"{source}: the [{role}] section is required to run a {role}")
    if role in ("gateway", "worker") and cfg.cluster.master_key is None:
        raise ConfigError(f"{source}: [cluster] master_key is required to run a {role}")
    if role == "worker" and cfg.worker is not None:
        scan = cfg.worker.scan
        if scan.backend == "clamd" and (scan.clamd_socket is None) == (scan.clamd_address is None):
            raise ConfigError(f"{source}: [worker.scan] backend = \"clamd\" needs exactly one of "
                              "clamd_socket and clamd_address")
    return cfg


def load_config(path: Path | str, role: Role | None = None) -> Config:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, path, role)
