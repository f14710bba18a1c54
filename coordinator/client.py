"""`CoordinatorClient`: the only way other processes talk to the coordinator.

Methods map 1:1 to the endpoints of coordinator/http.py, take and return the records of
coordinator/records.py and raise `CoordinatorError(code, message, status)` for error
answers (and `CoordinatorError("ServiceUnavailable", ..., 503)` when the coordinator cannot
be reached). Calls go over `config.internal_http` keep-alive connections (~50 us of client
CPU a call where aiohttp's client took ~150: a small S3 GET is one call). Set
`request_id` (and `client_addr`) in the caller's context to have them travel with every
call as X-Request-Id / X-Shardbox-Client.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from typing import Any
from urllib.parse import urlsplit

import orjson

from config.cluster_auth import body_hash, sign_headers
from config.internal_http import InternalHttp, ProtocolError
from coordinator.records import (
    BucketInfo,
    ChunkPlan,
    ChunkRef,
    CoordinatorError,
    DeleteResult,
    KeyInfo,
    ListResult,
    NodeInfo,
    ObjectInfo,
    PartInfo,
    PartList,
    UploadInfo,
    UploadList,
    WriteCondition,
    from_json,
    to_json,
)

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "coordinator_request_id", default=None
)
client_addr: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "coordinator_client_addr", default=None
)

PREFIX = "/internal/v1"
MAX_ANSWER = 1 << 30  # a manifest of a multi-TiB object is a few hundred MB of JSON


class CoordinatorClient:
    """Implements coordinator.records.CoordinatorAPI plus the admin calls, over HTTP."""

    def __init__(self, base_url: str, secret: str, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        url = urlsplit(self.base_url)
        self._origin = f"{url.scheme}://{url.netloc}"
        self._base_path = url.path
        self._secret = secret
        self._timeout_s = timeout_s
        self._http = InternalHttp(max_idle_per_server=100)

    async def close(self) -> None:
        self._http.close()

    async def __aenter__(self) -> CoordinatorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        headers = sign_headers(self._secret, method, self._base_path + path, body_hash(body))
        headers["Content-Type"] = "application/json"
        rid = request_id.get()
        if rid:
            headers["X-Request-Id"] = rid
        addr = client_addr.get()
        if addr:
            headers["X-Shardbox-Client"] = addr
        return headers

    async def _exchange(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        headers = self._headers(method, path, body)
        try:
            async with asyncio.timeout(self._timeout_s):
                resp = await self._http.request(
                    self._origin, method, self._base_path + path, headers, body, max_body=MAX_ANSWER
                )
        except (TimeoutError, OSError, ProtocolError) as exc:
            raise CoordinatorError("ServiceUnavailable", f"coordinator unreachable: {exc!r}", 503) from exc
        return resp.status, resp.body

    async def _call(self, path: str, /, **params: Any) -> Any:
        try:  # orjson serialises the record dataclasses directly
            body = orjson.dumps(params)
        except TypeError:  # e.g. an integer beyond 64 bits: let the server refuse it precisely
            body = json.dumps(to_json(params), separators=(",", ":")).encode()
        status, raw = await self._exchange("POST", path, body)
        try:
            return _document(status, raw).get("result")
        except ValueError:
            raise CoordinatorError(
                "InternalError", f"coordinator answered {status} without JSON", status
            ) from None

    async def _api(self, name: str, /, **params: Any) -> Any:
        return await self._call(f"{PREFIX}/{name}", **params)

    async def _admin(self, name: str, /, **params: Any) -> Any:
        return await self._call(f"{PREFIX}/admin/{name}", **params)

    # ---- identity -------------------------------------------------------------------------
    async def get_key(self, access_key: str) -> KeyInfo:
        return from_json(KeyInfo, await self._api("get_key", access_key=access_key))

    # ---- nodes and placement --------------------------------------------------------------
    async def list_nodes(self) -> list[NodeInfo]:
        return [from_json(NodeInfo, n) for n in await self._api("list_nodes")]

    async def place_chunks(self, tenant_id: str, chunks: list[tuple[str, int]]) -> list[ChunkPlan]:
        result = await self._api("place_chunks", tenant_id=tenant_id, chunks=[list(c) for c in chunks])
        return [from_json(ChunkPlan, p) for p in result]

    async def report_shard_failure(self, chunk_key: str, index: int, node_id: str, reason: str) -> None:
        await self._api(
            "report_shard_failure", chunk_key=chunk_key, index=index, node_id=node_id, reason=reason
        )

    async def heartbeat(self, health: dict[str, Any]) -> NodeInfo:
        """What a node sends: its /health document plus `address`."""
        return from_json(NodeInfo, await self._call(f"{PREFIX}/nodes/heartbeat", **health))

    # ---- buckets ----------------------------------------------------------------------------
    async def create_bucket(self, tenant_id: str, owner_id: str, name: str, region: str) -> BucketInfo:
        return from_json(
            BucketInfo,
            await self._api(
                "create_bucket", tenant_id=tenant_id, owner_id=owner_id, name=name, region=region
            ),
        )

    async def get_bucket(self, tenant_id: str, name: str) -> BucketInfo:
        return from_json(BucketInfo, await self._api("get_bucket", tenant_id=tenant_id, name=name))

    async def list_buckets(self, tenant_id: str) -> list[BucketInfo]:
        return [from_json(BucketInfo, b) for b in await self._api("list_buckets", tenant_id=tenant_id)]

    async def delete_bucket(self, tenant_id: str, name: str) -> None:
        await self._api("delete_bucket", tenant_id=tenant_id, name=name)

    # ---- uploads ----------------------------------------------------------------------------
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
    ) -> UploadInfo:
        return from_json(
            UploadInfo,
            await self._api(
                "begin_upload",
                tenant_id=tenant_id,
                owner_id=owner_id,
                bucket=bucket,
                key=key,
                kind=kind,
                reserve_bytes=reserve_bytes,
                content_type=content_type,
                metadata=metadata,
                headers=headers,
                storage_class=storage_class,
                checksum_algorithm=checksum_algorithm,
            ),
        )

    async def finalize_put(
        self, upload_id: str, size: int, etag: str, chunks: list[ChunkRef], checksums: dict[str, str],
        condition: WriteCondition | None = None,
    ) -> ObjectInfo:
        return from_json(
            ObjectInfo,
            await self._api(
                "finalize_put", upload_id=upload_id, size=size, etag=etag, chunks=chunks, checksums=checksums,
                condition=condition,
            ),
        )

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
    ) -> ObjectInfo:
        """One-shot commit of an object written in one go (small objects: one inline chunk)."""
        return from_json(
            ObjectInfo,
            await self._api(
                "put_object",
                tenant_id=tenant_id,
                owner_id=owner_id,
                bucket=bucket,
                key=key,
                size=size,
                etag=etag,
                content_type=content_type,
                metadata=metadata,
                headers=headers,
                storage_class=storage_class,
                chunks=chunks,
                checksums=checksums,
                condition=condition,
            ),
        )

    async def abort_upload(self, tenant_id: str, bucket: str, upload_id: str) -> None:
        await self._api("abort_upload", tenant_id=tenant_id, bucket=bucket, upload_id=upload_id)

    async def get_upload(self, tenant_id: str, bucket: str, key: str, upload_id: str) -> UploadInfo:
        return from_json(
            UploadInfo,
            await self._api("get_upload", tenant_id=tenant_id, bucket=bucket, key=key, upload_id=upload_id),
        )

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
        return from_json(
            PartInfo,
            await self._api(
                "put_part",
                tenant_id=tenant_id,
                bucket=bucket,
                key=key,
                upload_id=upload_id,
                part_number=part_number,
                size=size,
                etag=etag,
                chunks=chunks,
                checksums=checksums,
            ),
        )

    async def list_parts(
        self, tenant_id: str, bucket: str, key: str, upload_id: str, max_parts: int, part_number_marker: int
    ) -> PartList:
        return from_json(
            PartList,
            await self._api(
                "list_parts",
                tenant_id=tenant_id,
                bucket=bucket,
                key=key,
                upload_id=upload_id,
                max_parts=max_parts,
                part_number_marker=part_number_marker,
            ),
        )

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
        return from_json(
            UploadList,
            await self._api(
                "list_uploads",
                tenant_id=tenant_id,
                bucket=bucket,
                prefix=prefix,
                delimiter=delimiter,
                key_marker=key_marker,
                upload_id_marker=upload_id_marker,
                max_uploads=max_uploads,
            ),
        )

    async def complete_upload(
        self, tenant_id: str, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]],
        condition: WriteCondition | None = None,
    ) -> ObjectInfo:
        return from_json(
            ObjectInfo,
            await self._api(
                "complete_upload",
                tenant_id=tenant_id,
                bucket=bucket,
                key=key,
                upload_id=upload_id,
                parts=[list(p) for p in parts],
                condition=condition,
            ),
        )

    # ---- objects ----------------------------------------------------------------------------
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
    ) -> ObjectInfo:
        params: dict[str, Any] = {
            "tenant_id": tenant_id,
            "bucket": bucket,
            "key": key,
            "version_id": version_id,
            "with_chunks": with_chunks,
        }
        # Narrowings only when set, so a coordinator without them still answers plain GETs.
        narrowing = {"range_start": range_start, "range_end": range_end, "range_suffix": range_suffix,
                     "part_number": part_number}
        params.update((name, value) for name, value in narrowing.items() if value is not None)
        return from_json(ObjectInfo, await self._api("get_object", **params))

    async def list_objects(
        self,
        tenant_id: str,
        bucket: str,
        prefix: str,
        delimiter: str | None,
        marker: str | None,
        max_keys: int,
    ) -> ListResult:
        return from_json(
            ListResult,
            await self._api(
                "list_objects",
                tenant_id=tenant_id,
                bucket=bucket,
                prefix=prefix,
                delimiter=delimiter,
                marker=marker,
                max_keys=max_keys,
            ),
        )

    async def delete_object(self, tenant_id: str, bucket: str, key: str) -> None:
        await self._api("delete_object", tenant_id=tenant_id, bucket=bucket, key=key)

    async def delete_objects(self, tenant_id: str, bucket: str, keys: list[str]) -> list[DeleteResult]:
        result = await self._api("delete_objects", tenant_id=tenant_id, bucket=bucket, keys=keys)
        return [from_json(DeleteResult, r) for r in result]

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
    ) -> ObjectInfo:
        return from_json(
            ObjectInfo,
            await self._api(
                "copy_object",
                tenant_id=tenant_id,
                owner_id=owner_id,
                src_bucket=src_bucket,
                src_key=src_key,
                dst_bucket=dst_bucket,
                dst_key=dst_key,
                replace_metadata=replace_metadata,
                content_type=content_type,
                metadata=metadata,
                headers=headers,
            ),
        )

    async def touch_objects(self, version_ids: list[str]) -> None:
        await self._api("touch_objects", version_ids=version_ids)

    # ---- admin ------------------------------------------------------------------------------
    async def create_tenant(self, name: str, quota_bytes: int | None = None) -> dict[str, Any]:
        return await self._admin("create_tenant", name=name, quota_bytes=quota_bytes)

    async def set_quota(self, tenant_name: str, quota_bytes: int) -> dict[str, Any]:
        return await self._admin("set_quota", tenant_name=tenant_name, quota_bytes=quota_bytes)

    async def get_tenant(self, tenant_name: str) -> dict[str, Any]:
        return await self._admin("get_tenant", tenant_name=tenant_name)

    async def create_user(self, tenant_name: str, user_name: str, is_admin: bool = False) -> dict[str, Any]:
        return await self._admin(
            "create_user", tenant_name=tenant_name, user_name=user_name, is_admin=is_admin
        )

    async def create_key(self, user_name: str) -> KeyInfo:
        return from_json(KeyInfo, await self._admin("create_key", user_name=user_name))

    async def list_users(self) -> list[dict[str, Any]]:
        return await self._admin("list_users")

    async def ensure_admin(self) -> KeyInfo:
        return from_json(KeyInfo, await self._admin("ensure_admin"))

    async def health(self) -> dict[str, Any]:
        status, raw = await self._exchange("GET", "/health", b"")
        try:
            return _document(status, raw)
        except ValueError as exc:
            message = f"coordinator answered {status} without JSON"
            raise CoordinatorError("ServiceUnavailable", message, 503) from exc


def _document(status: int, raw: bytes | bytearray | memoryview) -> dict[str, Any]:
    """The coordinator's JSON answer; CoordinatorError for an error answer, ValueError if not JSON."""
    data = orjson.loads(raw)
    if status >= 400 or "error" in data:
        err = data.get("error") or {}
        raise CoordinatorError(err.get("code", "InternalError"), err.get("message", ""), status)
    return data
