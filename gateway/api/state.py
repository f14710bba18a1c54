"""What every product API request of one gateway process shares."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from blob import ChunkStore
from blob.chunk_cache import ChunkCache
from config.settings import GatewaySection
from coordinator.api import ProductAPI
from gateway.api.passwords import PasswordWork
from gateway.api.signing import UrlSigner


@dataclass
class ApiState:
    cfg: GatewaySection
    coordinator: ProductAPI
    store: ChunkStore
    signer: UrlSigner
    csrf_key: bytes                      # derives a session's CSRF token (gateway/api/auth.py)
    passwords: PasswordWork = field(default_factory=PasswordWork)
    # Chunk bodies buffered at once by chunk PUTs (each up to a chunk): bounds their memory.
    chunk_puts: asyncio.Semaphore = field(init=False)
    # Share-link bytes read through here: hot chunks cached, concurrent reads collapsed.
    chunk_cache: ChunkCache = field(init=False)

    def __post_init__(self) -> None:
        self.chunk_puts = asyncio.Semaphore(self.cfg.max_chunk_puts)
        self.chunk_cache = ChunkCache(self.store, self.cfg.chunk_cache_bytes)

    def base_url(self, request: web.Request) -> str:
        """Where clients reach this service: `[gateway] public_url`, else the request's host."""
        if self.cfg.public_url:
            return self.cfg.public_url
        return f"{request.scheme}://{request.host}"


API_STATE = web.AppKey("shardbox_product_api", ApiState)
