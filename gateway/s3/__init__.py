"""S3 protocol layer of the gateway: errors, XML, SigV4 authentication, payload decoding.

The operation handlers (`handlers*.py`, `router.py`) build on these modules; nothing here
knows about buckets or objects, only about how S3 speaks on the wire.
"""
