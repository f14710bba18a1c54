"""Records of the product API's coordinator calls (accounts, uploads, files, sharing).

Apart from coordinator/records.py (the S3 and blob records) so the two grow without
stepping on each other; the same rules hold: plain dataclasses the server serialises with
orjson and the client rebuilds from the declared types (coordinator/api.py, ProductAPI).
"""

from __future__ import annotations

from dataclasses import dataclass

from coordinator.records import ObjectInfo

# What the public learns of a link that is unknown, revoked, or whose file is gone or
# quarantined: one answer for all (no existence oracle).
LINK_GONE = "this link does not exist or was revoked"

@dataclass
class Principal:
    """Who a bearer token or session cookie stands for."""

    user_id: str
    user_name: str
    tenant_id: str
    tenant_name: str
    token_id: str
    kind: str                        # session | api
    is_admin: bool = False
    expires_at: float | None = None


@dataclass
class TokenInfo:
    """A session or API token as its owner may see it (never the token itself)."""

    id: str
    name: str
    kind: str
    created_at: float
    expires_at: float | None = None


@dataclass
class LoginCandidate:
    """The first step of a password login: may this attempt go ahead, and against which hash.

    `password_hash` is None for an unknown user or one without a password: the gateway then
    verifies against a dummy hash, so both answers take the same time."""

    allowed: bool
    retry_after_s: float = 0.0
    user_id: str | None = None
    password_hash: str | None = None


@dataclass
class QuotaFigures:
    quota_bytes: int | None          # None: no limit of its own
    used_bytes: int
    reserved_bytes: int


@dataclass
class Usage:
    user: QuotaFigures
    tenant: QuotaFigures


@dataclass
class FileEntry:
    """A file or folder as the product API shows it."""

    id: str
    name: str
    path: str                        # from the drive's root, or from the shared item for others
    type: str                        # file | folder
    owner: str                       # the drive owner's user name
    permission: str                  # owner | edit | view: what the asking user may do
    updated_at: float
    size: int = 0
    version: str | None = None       # the current version's id (files)
    status: str | None = None        # scanning | ready | quarantined (files)
    content_type: str | None = None
    trashed_at: float | None = None


@dataclass
class FolderPage:
    folder: FileEntry
    items: list[FileEntry]
    next: str | None = None          # cursor of the next page


@dataclass
class VersionEntry:
    version: str
    size: int
    created_at: float
    current: bool
    status: str


@dataclass
class FileContent:
    """What serving a file's bytes needs: the entry, and the version with (some of) its chunks."""

    entry: FileEntry
    object: ObjectInfo


@dataclass
class UploadTarget:
    """Where an upload goes: `path` in the user's drive, or `name` in folder `parent_id`, or a
    new version of `file_id`."""

    path: str | None = None
    parent_id: str | None = None
    name: str | None = None
    file_id: str | None = None


@dataclass
class UploadStatus:
    upload_id: str
    path: str
    size: int
    chunk_size: int
    missing: list[int]               # the first index of each distinct chunk not stored yet
    landed: list[int]                # every index whose chunk the session holds
    expires_at: float
    file_id: str | None = None


@dataclass
class ChunkTarget:
    """What a chunk PUT must bring: the announced digest and size, and whose dedup scope."""

    upload_id: str
    tenant_id: str
    index: int
    sha256: str
    size: int
    landed: bool


@dataclass
class GrantInfo:
    id: str
    file_id: str
    user: str                        # the grantee's user name
    permission: str                  # view | edit
    created_at: float


@dataclass
class LinkInfo:
    """A share link as its owner sees it (never the token: it was shown once)."""

    id: str
    file_id: str
    file_name: str
    permission: str                  # view | download
    created_at: float
    status: str                      # active | expired | exhausted | revoked
    downloads: int = 0
    max_downloads: int | None = None
    expires_at: float | None = None
    has_password: bool = False
    revoked_at: float | None = None


@dataclass
class LinkItem:
    """A file or folder reached through a share link. The ids are for the gateway (to sign
    URLs); public answers show names, sizes and types only."""

    name: str
    path: str                        # below the shared item ("" for the item itself)
    type: str
    file_id: str
    size: int = 0
    content_type: str | None = None
    status: str | None = None
    version_id: str | None = None
    etag: str | None = None


@dataclass
class LinkView:
    """What `GET /share/{token}` may show, after the link's checks passed."""

    link_id: str
    permission: str
    item: LinkItem
    password_hash: str | None = None
    expires_at: float | None = None
    items: list[LinkItem] | None = None   # a folder's contents


@dataclass
class LinkContent:
    content: FileContent
    permission: str                  # the link's: view (inline only) | download (attachment)
    download_id: str | None = None   # a counted download in progress (finish it with its outcome)
