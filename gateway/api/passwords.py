"""Password hashing for accounts and share links: argon2id (memory-hard) through argon2-cffi.

Hashing and verifying run on worker threads (the C code releases the GIL), at most a few at
once: each takes 19 MiB and a core for a while, so a burst of logins must queue rather than
exhaust the gateway's memory. A check against an unknown user or a link without a password
runs against a dummy hash, so a wrong user name and a wrong password cost the same time.
"""

from __future__ import annotations

import asyncio
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_PASSWORD_BYTES = 1024
# argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): memory-hard, ~50 ms
# of one core per check on an idle machine, so a gateway can still serve logins in bursts.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@functools.cache
def _dummy() -> str:
    return HASHER.hash(secrets.token_urlsafe(16))


def check_password_text(password: str) -> None:
    """Refuse what cannot be a password before spending a hash on it."""
    if not isinstance(password, str) or not password:
        raise ValueError("password must be a non-empty string")
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        raise ValueError(f"password must be at most {MAX_PASSWORD_BYTES} bytes")


def hash_password(password: str) -> str:
    """The PHC string to store (blocking; for tools and worker threads)."""
    check_password_text(password)
    return HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True if `password` matches `stored` (blocking). None checks against a dummy, False."""
    try:
        HASHER.verify(stored or _dummy(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored is not None


class PasswordWork:
    """Hashes and checks on worker threads, `concurrency` at a time (one per gateway process)."""

    def __init__(self, concurrency: int = 2) -> None:
        self._slots = asyncio.Semaphore(concurrency)

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(hash_password, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(verify_password, stored, password)
