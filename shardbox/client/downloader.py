"""Download one file to disk: streamed, and resumed with a Range request when a partial
`.part` file of the same version is already there (If-Range keeps a changed file from
being stitched onto the old bytes)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from shardbox.client.api import ProductClient
from shardbox.client.progress import NullTracker, Tracker

READ_SIZE = 1 << 20


@dataclass
class DownloadResult:
    path: str
    local: str
    size: int
    bytes_received: int
    resumed_from: int
    seconds: float

    def as_json(self) -> dict:
        return {"path": self.path, "local": self.local, "size": self.size,
                "bytes_received": self.bytes_received, "resumed_from": self.resumed_from,
                "seconds": round(self.seconds, 3)}


async def download(client: ProductClient, entry: dict, dest: Path, tracker: Tracker | None = None,
                   ) -> DownloadResult:
    tracker = tracker or NullTracker()
    started = time.monotonic()
    part = dest.with_name(dest.name + ".part")
    meta = dest.with_name(dest.name + ".part.json")
    start, validator = 0, None
    if part.exists() and meta.exists():
        try:
            saved = json.loads(meta.read_text())
            if saved.get("id") == entry["id"] and saved.get("etag"):
                start, validator = part.stat().st_size, saved["etag"]
        except ValueError:
            pass
    resp = await client.open_content(str(entry["id"]), start, if_range=validator)
    try:
        if resp.status != 206:
            start = 0                                   # full body: the file changed, or no resume
        etag = resp.headers.get("ETag")
        total = start + int(resp.headers.get("Content-Length", "0") or 0)
        meta.write_text(json.dumps({"id": entry["id"], "etag": etag}))
        tracker.phase("downloading", total=total, completed=start)
        received = 0
        with open(part, "r+b" if start else "wb") as fh:
            fh.seek(start)
            fh.truncate()
            async for piece in resp.content.iter_chunked(READ_SIZE):
                fh.write(piece)
                received += len(piece)
                tracker.advance(len(piece))
            fh.flush()
            os.fsync(fh.fileno())
    finally:
        resp.release()
    if start + received != total:
        raise ConnectionError(f"connection closed after {start + received} of {total} bytes; run the "
                              "same download again to resume")
    os.replace(part, dest)
    meta.unlink(missing_ok=True)
    tracker.finish("saved")
    return DownloadResult(path=entry.get("path", ""), local=str(dest), size=total, bytes_received=received,
                          resumed_from=start, seconds=time.monotonic() - started)
