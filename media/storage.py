"""The one door to object storage: presigned uploads, HEADs, deletes, public URLs, the bucket.

Everything goes through django-storages' ``S3Storage`` (and its boto3 client),
configured by the ``AWS_*`` settings, so the local endpoint, MinIO, R2 and AWS
S3 differ only in ``AWS_S3_ENDPOINT_URL`` and the credentials.
"""
import functools
import json
from dataclasses import dataclass

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from storages.backends.s3 import S3Storage


class StorageUnavailable(Exception):
    """Object storage did not answer (or answered an error other than "no such object")."""


@dataclass(frozen=True)
class StoredObject:
    size_bytes: int
    content_type: str


# Short timeouts: a slow store must fail a request, not hang a web worker; the
# readiness probe's are shorter still, and it does not retry.
_TIMEOUTS = {"request": {"connect_timeout": 2, "read_timeout": 5, "retries": {"max_attempts": 2}},
             "probe": {"connect_timeout": 2, "read_timeout": 2, "retries": {"total_max_attempts": 1}}}


@functools.lru_cache(maxsize=8)
def _storage(endpoint_url: str | None, bucket: str, use: str) -> S3Storage:
    # One per endpoint and bucket (tests point the settings at their own endpoint).
    config = Config(
        s3={"addressing_style": settings.AWS_S3_ADDRESSING_STYLE},
        signature_version=settings.AWS_S3_SIGNATURE_VERSION,
        **_TIMEOUTS[use],
    )
    return S3Storage(endpoint_url=endpoint_url, bucket_name=bucket, querystring_auth=False, client_config=config)


def _client(use: str = "request"):
    return _storage(settings.AWS_S3_ENDPOINT_URL, settings.AWS_STORAGE_BUCKET_NAME, use).connection.meta.client


def _public_endpoint() -> str | None:
    return settings.AWS_S3_PUBLIC_ENDPOINT_URL or settings.AWS_S3_ENDPOINT_URL


def public_url(key: str) -> str:
    """Where readers fetch ``key``: under ``MEDIA_CDN_URL``, or the endpoint's URL for the bucket."""
    base = settings.MEDIA_CDN_URL or (
        f"{_public_endpoint() or 'https://s3.amazonaws.com'}/{settings.AWS_STORAGE_BUCKET_NAME}")
    return f"{base.rstrip('/')}/{key}"


def presigned_post(*, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict:
    """A presigned S3 POST whose policy pins the key, the content type and a size of 1 to ``max_bytes``.

    Returns boto3's ``{"url", "fields"}``: the client posts ``fields`` plus its
    ``file`` as multipart form data to ``url``. Signing is local (no request).
    """
    post = _client().generate_presigned_post(
        Bucket=settings.AWS_STORAGE_BUCKET_NAME,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
        ExpiresIn=expires_in,
    )
    if settings.AWS_S3_PUBLIC_ENDPOINT_URL and settings.AWS_S3_ENDPOINT_URL:
        post["url"] = post["url"].replace(settings.AWS_S3_ENDPOINT_URL, settings.AWS_S3_PUBLIC_ENDPOINT_URL, 1)
    return post


def upload(*, key: str, fileobj, content_type: str) -> None:
    """Stream ``fileobj`` to ``key`` (boto3 sends a large file in parts, never all of it
    in memory): the one path where the API carries bytes, for Mastodon clients."""
    try:
        _client().upload_fileobj(fileobj, settings.AWS_STORAGE_BUCKET_NAME, key,
                                 ExtraArgs={"ContentType": content_type})
    except (BotoCoreError, ClientError) as exc:
        raise StorageUnavailable(str(exc)) from exc


def head(key: str) -> StoredObject | None:
    """What is stored at ``key`` (size and type), or None if nothing is."""
    try:
        answer = _client().head_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise StorageUnavailable(str(exc)) from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(str(exc)) from exc
    return StoredObject(size_bytes=answer["ContentLength"], content_type=answer.get("ContentType", ""))


def delete(keys: list[str]) -> None:
    """Delete ``keys`` (absent ones are no error), in batches of S3's limit of 1,000."""
    client = _client()
    for start in range(0, len(keys), 1000):
        batch = keys[start:start + 1000]
        try:
            client.delete_objects(Bucket=settings.AWS_STORAGE_BUCKET_NAME,
                                  Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True})
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(str(exc)) from exc


def ping() -> None:
    """Raise unless the bucket answers (the readiness probe), within a couple of seconds."""
    try:
        _client("probe").head_bucket(Bucket=settings.AWS_STORAGE_BUCKET_NAME)
    except (BotoCoreError, ClientError) as exc:
        raise StorageUnavailable(str(exc)) from exc


def bucket_ensure() -> bool:
    """Create the bucket if it is missing and let anyone read its objects (readers fetch
    media by URL, as from a CDN); True if it was created."""
    client = _client()
    bucket = settings.AWS_STORAGE_BUCKET_NAME
    created = False
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        client.create_bucket(Bucket=bucket)
        created = True
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
                       "Resource": [f"arn:aws:s3:::{bucket}/*"]}],
    }))
    return created
