"""Error codes the coordinator answers with, and their HTTP statuses (docs/internals.md)."""

from __future__ import annotations

from coordinator.records import CoordinatorError

STATUS = {
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchUpload": 404,
    "NoSuchVersion": 404,
    "NoSuchTenant": 404,
    "NoSuchUser": 404,
    "NoSuchNode": 404,
    "NoSuchLifecycleConfiguration": 404,
    "InvalidObjectState": 403,
    "RestoreAlreadyInProgress": 409,
    "BucketAlreadyOwnedByYou": 409,
    "BucketAlreadyExists": 409,
    "BucketNotEmpty": 409,
    "AlreadyExists": 409,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "EntityTooSmall": 400,
    "InvalidBucketName": 400,
    "InvalidArgument": 400,
    "InvalidRequest": 400,
    "BadDigest": 400,
    "PreconditionFailed": 412,
    "MethodNotAllowed": 405,
    "QuotaExceeded": 403,
    "AccessDenied": 403,
    "InvalidAccessKeyId": 403,
    "Unauthorized": 401,
    "NotFound": 404,
    "Gone": 410,
    "EditConflict": 409,
    "UploadIncomplete": 409,
    "TooEarly": 425,
    "TooManyRequests": 429,
    "ServiceUnavailable": 503,
    "InternalError": 500,
}


def error(code: str, message: str) -> CoordinatorError:
    """A CoordinatorError with the status that belongs to its code."""
    return CoordinatorError(code, message, STATUS.get(code, 400))


def being_collected(chunk_key: str) -> CoordinatorError:
    """A write touched a chunk garbage collection is deleting (coordinator/gc.py): the client
    retries, and then writes the chunk anew."""
    return error("ServiceUnavailable", f"chunk {chunk_key} is being garbage-collected right now; retry")


class RetryTransaction(Exception):
    """Raised inside a write function when it lost a race and should simply run again."""
