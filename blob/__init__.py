"""The blob layer's client side: the streaming data path between requests and storage nodes.

Used by the gateway (S3 and product API) and by background workers; it imports neither.

Exact public API (everything else in this package is internal)::

    store = ChunkStore(coordinator: CoordinatorAPI, master_key: bytes, cluster_secret: str,
                       chunk_size: int = 8 << 20, min_acks: int = 12, shard_timeout_s: float = 10.0,
                       key_id: str = "m1", *, threads: int | None = None, write_depth: int = 2,
                       read_ahead: int = 1, hedge_s: float | None = None,
                       straggler_s: float | None = None, suspect_s: float = 30.0,
                       max_chunks_in_flight: int = 3, tune_malloc: bool = True,
                       write_format: int = 2)
        # One per gateway process. Node connections are opened lazily inside the running loop.
        # threads: worker pool for hashing/AES/RS (default cpu+2, at least 4); write_depth: chunks
        # in flight per write besides the one being read; read_ahead: chunks prefetched per read;
        # hedge_s (default min(1, shard_timeout_s/4)): a read asks for spare shards when none
        # arrived for that long. straggler_s (default min(5, shard_timeout_s/2)): a write gives
        # up on the last shards that long after min_acks acks (they go to `missing`).
        # suspect_s: nodes that timed out/refused are tried last (read) or skipped (write,
        # while min_acks remain) for that long. max_chunks_in_flight: store-wide cap on chunks
        # being written (and, separately, fetched) at once across all requests; plaintext
        # slots of writes and plaintext of reads not yet sent are capped at twice that plus
        # two chunks each, so memory does not grow with the number of concurrent requests. tune_malloc:
        # one glibc arena with large mmap/trim thresholds (config/malloc.py), so chunk and shard
        # buffers are reused warm instead of mapped and zeroed again (~40% less gateway CPU on reads).
        # write_format: storage format of new chunks (blob/formats.py): 2, or 1 while gateways
        # of the first release (which cannot read 2) still serve reads. Both are always read.

    result: WriteResult = await store.write(tenant_id: str, source: AsyncIterator[bytes | memoryview],
                                            algorithms: set[str], *, request_id: str | None = None,
                                            payload_sha256: bool = True)
        # algorithms: subset of SUPPORTED_CHECKSUMS = {"crc32","crc32c","crc64nvme","sha1","sha256"};
        #   an unknown name raises UnsupportedChecksum (a ValueError) before anything is read.
        # WriteResult(size: int, md5_hex: str,
        #             checksums: dict[str, str],   # requested algo -> base64 as S3 shows it,
        #                                          # plus "sha256hex": hex SHA-256 of the whole payload
        #                                          # (left out with payload_sha256=False, which saves
        #                                          # a SHA-256 pass when the client did not sign the
        #                                          # payload and did not ask for a sha256 checksum)
        #             chunks: list[ChunkRef])      # in order, offset filled; a 0-byte stream has none
        # Raises WriteFailed (a chunk got < min_acks shard acks, or fewer nodes are up -> 503),
        # CoordinatorError from place_chunks, or whatever the source raised. Nothing is finalized
        # here: the caller passes result.chunks to finalize_put / put_part. Alias: store.write_stream.

    ref: ChunkRef = await store.write_chunk(tenant_id: str, data: bytes | bytearray | memoryview,
                                            sha256: str, *, request_id: str | None = None)
        # One chunk (at most chunk_size bytes) whose SHA-256 hex was announced before its bytes:
        # ChunkMismatch (a ValueError) before any node is contacted unless the bytes hash to it.
        # Hashed once (no MD5, no payload checksum); otherwise stored exactly like a chunk of
        # `write` (dedup, inline when small). Raises WriteFailed / CoordinatorError like `write`.

    await store.verify_chunk(data, sha256)
        # ChunkMismatch unless data hashes to sha256: write_chunk's check alone (a chunk that
        # is stored already and arrives again).

    async for piece in store.read(obj: ObjectInfo, start: int, end: int, *, request_id=None,
                                  stats: ReadStats | None = None):
        # obj.chunks must be filled (get_object(..., with_chunks=True)); end is inclusive like
        # HTTP ranges; 0 <= start <= end < obj.size (ValueError otherwise; a 0-byte object yields
        # nothing). Pieces are bytes (a whole chunk) or memoryviews (part of one); a part of a
        # format-2 chunk is read from only the 64 KiB segments that hold it. Pull the first
        # piece before sending headers: DataUnavailable (-> 503) comes from there if the first
        # chunk is unreadable. Use contextlib.aclosing() or aclose() when
        # stopping early so prefetches are cancelled. Alias: store.read_range.
        # stats: counters of node traffic (node_bytes_in, shard_gets, ranged_chunks, fallbacks)
        # the read adds to, for the request log.

    await store.check_available(obj: ObjectInfo, start: int, end: int)
        # DataUnavailable unless every chunk holding those bytes has 10 shards on nodes believed
        # up (the coordinator's registry, minus nodes this gateway found unresponsive); a GET
        # calls it before its status line, so a read known to fail is a 503, not a cut body.

    await store.close()

    MultiHasher(algorithms: Iterable[str])   # .update(buf), .results() -> {algo: base64},
                                             # .digest(algo), .hexdigest(algo); also accepts "md5"
    checksum_b64(algorithm, data) -> str     # one-shot, S3 base64 form
    chunk_key(scope, sha256_hex) -> str

Errors: WriteFailed, DataUnavailable (both carry chunk_key), UnsupportedChecksum(ValueError),
ChunkMismatch(ValueError).
"""

from blob.crypto import ChunkCipher, ChunkCorrupt, chunk_key
from blob.errors import ChunkMismatch, DataUnavailable, WriteFailed
from blob.hashing import SUPPORTED_CHECKSUMS, MultiHasher, UnsupportedChecksum, checksum_b64
from blob.stats import ReadStats
from blob.store import ChunkStore
from blob.writer import WriteResult

__all__ = [
    "SUPPORTED_CHECKSUMS",
    "ChunkCipher",
    "ChunkCorrupt",
    "ChunkMismatch",
    "ChunkStore",
    "DataUnavailable",
    "MultiHasher",
    "ReadStats",
    "UnsupportedChecksum",
    "WriteFailed",
    "WriteResult",
    "checksum_b64",
    "chunk_key",
]
