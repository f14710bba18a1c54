"""Storage tiers: the storage class of a node pool, and the tier each S3 storage class lives in.

Three tiers, warmest first: STANDARD (new data), STANDARD_IA (infrequent access) and COLD
(archive: an object whose class maps to COLD answers GET with InvalidObjectState until
RestoreObject has brought it back). Clients name classes the AWS way (GLACIER,
DEEP_ARCHIVE, ONEZONE_IA, ...) or `COLD`; the object keeps the name it was given and its
bytes go to the pool of the tier that name maps to. This is the one place that mapping is
written down: the node config, the coordinator and the gateway all ask here.
"""

from __future__ import annotations

TIERS = ("STANDARD", "STANDARD_IA", "COLD")  # warmest first
STANDARD, STANDARD_IA, COLD = TIERS

_CLASS_TIER = {
    "STANDARD": STANDARD,
    "REDUCED_REDUNDANCY": STANDARD,
    "INTELLIGENT_TIERING": STANDARD,
    "EXPRESS_ONEZONE": STANDARD,
    "STANDARD_IA": STANDARD_IA,
    "ONEZONE_IA": STANDARD_IA,
    "GLACIER_IR": STANDARD_IA,  # "instant retrieval": readable without a restore
    "GLACIER": COLD,
    "DEEP_ARCHIVE": COLD,
    "COLD": COLD,
}
STORAGE_CLASSES = frozenset(_CLASS_TIER)

# Pool names an operator may use for a tier (`shardbox up --pool cold=14`, `[node] pool`).
_POOL_TIER = {
    "standard": STANDARD,
    "hot": STANDARD,
    "standard_ia": STANDARD_IA,
    "ia": STANDARD_IA,
    "warm": STANDARD_IA,
    "cold": COLD,
    "glacier": COLD,
}


def storage_tier(storage_class: str | None) -> str:
    """The tier of an S3 storage class (unknown or empty: STANDARD)."""
    return _CLASS_TIER.get((storage_class or STANDARD).upper(), STANDARD)


def pool_tier(pool: str) -> str | None:
    """The tier a pool name stands for, or None if the name says none (then it is STANDARD
    unless the node's config names its storage class)."""
    return _POOL_TIER.get(pool.lower()) or (pool.upper() if pool.upper() in TIERS else None)


def warmest(tiers: list[str]) -> str:
    """The warmest of some tiers (STANDARD for none)."""
    return min(tiers, key=TIERS.index, default=STANDARD)


def colder(a: str, b: str) -> bool:
    """True if tier a is colder than tier b."""
    return TIERS.index(a) > TIERS.index(b)
