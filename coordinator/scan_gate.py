"""Who may read an object's bytes, by its scan status: one rule for the S3 API, the product
API and share links (README "Malware scanning"; the status itself comes from
coordinator/scans.py).

- `quarantined`: only admins read the bytes (they are kept for them); everyone else is
  refused as if it were not there to read.
- `scanning`: share-link and anonymous downloads wait: 425 Too Early, with Retry-After.
  Authenticated principals with access to the bucket (S3 keys, signed-in users) read it at
  once by default, S3's read-after-write that backup tools rely on; a bucket whose
  `scan_gate` is on (`shardbox admin scan gate BUCKET on`) makes them wait too.
- anything else (`ready`): no restriction from the scan.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

RETRY_AFTER_S = 5


class Reader(enum.Enum):
    ADMIN = "admin"  # an administrator
    USER = "user"  # an authenticated principal with access to the bucket
    PUBLIC = "public"  # anonymous, or through a share link


@dataclass(frozen=True)
class Refusal:
    reason: str  # "scanning" | "quarantined"
    status: int  # 425 for scanning; the caller maps quarantined to its "not readable" answer
    message: str


def refusal(status: str, reader: Reader, *, bucket_gate: bool = False) -> Refusal | None:
    """Why `reader` may not read the bytes of an object in `status` now, or None."""
    if status == "quarantined" and reader is not Reader.ADMIN:
        return Refusal("quarantined", 403, "The object is quarantined: the malware scan flagged it.")
    if status == "scanning" and (reader is Reader.PUBLIC or (reader is Reader.USER and bucket_gate)):
        return Refusal("scanning", 425, "The object is being scanned for malware; try again shortly.")
    return None
