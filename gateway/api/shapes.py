"""The JSON shapes of the product API's answers (one place for each record's form)."""

from __future__ import annotations

from typing import Any

from coordinator.product_records import FileEntry, GrantInfo, LinkInfo, LinkItem, UploadStatus, VersionEntry
from gateway.api.context import iso


def entry(e: FileEntry) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": e.id, "name": e.name, "path": e.path, "type": e.type, "size": e.size,
                           "version": e.version, "status": e.status, "content_type": e.content_type,
                           "updated_at": iso(e.updated_at)}
    if e.permission != "owner":
        doc["owner"] = e.owner
        doc["permission"] = e.permission
    if e.trashed_at is not None:
        doc["trashed_at"] = iso(e.trashed_at)
    return doc


def version(v: VersionEntry) -> dict[str, Any]:
    return {"version": v.version, "size": v.size, "created_at": iso(v.created_at), "current": v.current,
            "status": v.status}


def grant(g: GrantInfo) -> dict[str, Any]:
    return {"id": g.id, "file_id": g.file_id, "user": g.user, "permission": g.permission,
            "created_at": iso(g.created_at)}


def link(info: LinkInfo) -> dict[str, Any]:
    return {"id": info.id, "permission": info.permission, "status": info.status,
            "expires_at": iso(info.expires_at), "max_downloads": info.max_downloads,
            "downloads": info.downloads,
            "has_password": info.has_password, "created_at": iso(info.created_at),
            "file": {"id": info.file_id, "name": info.file_name}}


def public_item(item: LinkItem) -> dict[str, Any]:
    """A shared item for anyone holding the link: names, sizes and types, no ids, no times."""
    doc: dict[str, Any] = {"name": item.name, "path": item.path, "type": item.type}
    if item.type == "file":
        doc.update(size=item.size, content_type=item.content_type, status=item.status)
    return doc


def upload(s: UploadStatus, urls: dict[str, str]) -> dict[str, Any]:
    return {"upload_id": s.upload_id, "path": s.path, "size": s.size, "chunk_size": s.chunk_size,
            "missing": s.missing, "landed": s.landed, "urls": urls, "expires_at": iso(s.expires_at)}
