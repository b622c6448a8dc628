"""The one door to object storage: presigned uploads, copies, HEADs, deletes, URLs, the bucket.

Everything goes through django-storages' ``S3Storage`` (and its boto3 client),
configured by the ``AWS_*`` settings, so the local endpoint, MinIO, R2 and AWS
S3 differ only in ``AWS_S3_ENDPOINT_URL`` and the credentials.

An object's key is a prefix and its name (``Media.key``): ``uploads/`` where a
presigned POST (or the API) writes it, ``public/`` (the one prefix the bucket
policy lets anyone read) and ``private/`` (read only through a signed URL) once a
tweet carries it. Only the service moves objects between them, by copying.
"""
import functools
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from storages.backends.s3 import S3Storage

logger = logging.getLogger(__name__)


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


# Each placement's prefix (``Media.Placement``); a legacy object sits at its bare name.
UPLOADS, PUBLIC, PRIVATE = "uploads/", "public/", "private/"
PREFIXES = {"upload": UPLOADS, "public": PUBLIC, "private": PRIVATE, "legacy": ""}


def key_of(name: str, placement: str) -> str:
    """The object key of the medium ``name`` (``Media.key``) where ``placement`` puts it."""
    return PREFIXES[placement] + name


def _public_endpoint() -> str | None:
    return settings.AWS_S3_PUBLIC_ENDPOINT_URL or settings.AWS_S3_ENDPOINT_URL


def public_base() -> str:
    """The URL public media lie under (``public_url`` adds their ``public/`` key)."""
    return (settings.MEDIA_CDN_URL or (
        f"{_public_endpoint() or 'https://s3.amazonaws.com'}/{settings.AWS_STORAGE_BUCKET_NAME}")).rstrip("/")


def public_url(name: str) -> str:
    """Where anyone fetches the public medium ``name``: its ``public/`` key under
    ``MEDIA_CDN_URL``, or the endpoint's URL for the bucket. Made locally, no request."""
    return f"{public_base()}/{PUBLIC}{name}"


def signed_url(key: str, *, expires_in: int, now: float | None = None) -> str:
    """A presigned GET of ``key`` (AWS Signature Version 4, as boto3's
    ``generate_presigned_url`` makes it), under the same base as public URLs: a CDN
    passes the query string on to the bucket. It is signed for the endpoint as clients
    reach it (the signature covers the host), locally and without boto3's per-call
    machinery, which costs half a millisecond a URL on the read path (this, some
    microseconds). The signing time is the start of a window of a third of
    ``expires_in``, so a URL stays the same (and cacheable) through its window and
    works for ``expires_in`` at least, at most a third more."""
    window = max(expires_in // 3, 1)
    signed_at = int(time.time() if now is None else now) // window * window
    host, path = _signing_target(key)
    query = _presign_query(host=host, path=path, signed_at=signed_at, expires_in=expires_in + window)
    return f"{public_base()}/{quote(key, safe='/-_.~')}?{query}"


def _signing_target(key: str) -> tuple[str, str]:
    """The host and path of ``key`` as ``public_url``'s base addresses the bucket without a
    CDN (path style: ``{endpoint}/{bucket}/{key}``); a CDN must forward to just that."""
    parts = urlsplit(_public_endpoint() or "https://s3.amazonaws.com")
    return parts.netloc, f"{parts.path.rstrip('/')}/{settings.AWS_STORAGE_BUCKET_NAME}/{key}"


@functools.lru_cache(maxsize=8)
def _signing(access_key: str, secret: str, region: str, signed_at: int, expires_in: int) -> tuple[str, str, bytes]:
    """What every URL signed in one window shares: its query (but the signature), the
    string-to-sign's head, and the signing key."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(signed_at))
    scope = f"{stamp[:8]}/{region}/s3/aws4_request"
    params = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": f"{access_key}/{scope}",
              "X-Amz-Date": stamp, "X-Amz-Expires": str(min(expires_in, 7 * 24 * 3600)),
              "X-Amz-SignedHeaders": "host"}
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))
    key = f"AWS4{secret}".encode()
    for part in (stamp[:8], region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return query, f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n", key


def _presign_query(*, host: str, path: str, signed_at: int, expires_in: int) -> str:
    query, head, key = _signing(settings.AWS_ACCESS_KEY_ID, settings.AWS_SECRET_ACCESS_KEY,
                                settings.AWS_S3_REGION_NAME, signed_at, expires_in)
    canonical = f"GET\n{quote(path, safe='/-_.~')}\n{query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD"
    to_sign = head + hashlib.sha256(canonical.encode()).hexdigest()
    return f"{query}&X-Amz-Signature={hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()}"


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


class StreamingUpload:
    """Bytes written to ``key`` as they arrive, with never more than one part
    (``PART_BYTES``) in memory: a small object is one PUT at ``finish``, a larger one
    an S3 multipart upload, a part sent each time one fills. ``abort`` leaves nothing."""

    PART_BYTES = 8 * 1024 * 1024  # S3's parts are 5 MiB at least, but the last

    def __init__(self, *, key: str, content_type: str):
        self.key, self.content_type = key, content_type
        self.size = 0
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict] = []

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        if len(self._buffer) >= self.PART_BYTES:
            self._send_part()

    def _send_part(self) -> None:
        client, bucket = _client(), settings.AWS_STORAGE_BUCKET_NAME
        try:
            if self._upload_id is None:
                self._upload_id = client.create_multipart_upload(
                    Bucket=bucket, Key=self.key, ContentType=self.content_type)["UploadId"]
            number = len(self._parts) + 1
            answer = client.upload_part(Bucket=bucket, Key=self.key, UploadId=self._upload_id,
                                        PartNumber=number, Body=bytes(self._buffer))
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(str(exc)) from exc
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self._buffer.clear()

    def finish(self) -> int:
        """Store what was written; its size."""
        client, bucket = _client(), settings.AWS_STORAGE_BUCKET_NAME
        try:
            if self._upload_id is None:
                client.put_object(Bucket=bucket, Key=self.key, Body=bytes(self._buffer),
                                  ContentType=self.content_type)
            else:
                if self._buffer:
                    self._send_part()
                client.complete_multipart_upload(Bucket=bucket, Key=self.key, UploadId=self._upload_id,
                                                 MultipartUpload={"Parts": self._parts})
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(str(exc)) from exc
        self._buffer.clear()
        return self.size

    def abort(self) -> None:
        """Drop what was sent (best effort: storage may be what failed)."""
        self._buffer.clear()
        if self._upload_id is not None:
            try:
                _client().abort_multipart_upload(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=self.key,
                                                 UploadId=self._upload_id)
            except (BotoCoreError, ClientError):
                pass


def copy(source: str, target: str) -> bool:
    """Copy ``source`` to ``target`` inside the bucket (server side, type kept); False if
    there is no ``source``. The copy is a snapshot: later writes to ``source`` miss it."""
    try:
        _client().copy_object(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=target, MetadataDirective="COPY",
                              CopySource={"Bucket": settings.AWS_STORAGE_BUCKET_NAME, "Key": source})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise StorageUnavailable(str(exc)) from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(str(exc)) from exc
    return True


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
    """Create the bucket if it is missing, let anyone read the objects under ``public/``
    (and nothing else: uploads and private media are read through signed URLs), and let
    pages of any origin upload and read (CORS); True if it was created."""
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
                       "Resource": [f"arn:aws:s3:::{bucket}/{PUBLIC}*"]}],
    }))
    # Browsers upload straight to the bucket (the web client's presigned POST, from its page's
    # origin) and read the media: the presigned policy, not the origin, is what guards a write.
    try:
        client.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
            "AllowedOrigins": ["*"], "AllowedMethods": ["GET", "HEAD", "POST"], "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3600,
        }]})
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NotImplemented":
            raise
        # MinIO has no per-bucket CORS: it answers any origin itself (MINIO_API_CORS_ALLOW_ORIGIN, "*").
        logger.info("bucket %s: the server sets CORS itself (no per-bucket rules)", bucket)
    return created
