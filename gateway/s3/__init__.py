"""S3 protocol layer of the gateway: errors, XML, SigV4/SigV2 authentication, payload decoding.

- `errors`: `S3Error` (code -> status/message table) and the `<Error>` response.
- `xmlio`: safe request XML parsing (namespace-tolerant) and response XML building.
- `sigv4` (+ `sigv2`): request authentication -> `AuthContext`.
- `payload`: `PayloadStream`, the decoded and verified request body (plain or aws-chunked).
- `checksum_headers`: Content-MD5 / `x-amz-checksum-*` requests and their verification.

The operation handlers (`handlers*.py`, `router.py`) build on these modules; nothing here
knows about buckets or objects, only about how S3 speaks on the wire.
"""
