"""Uploads through the API (the Mastodon API's ``POST /api/v2/media``), refused as early
as the request lets them be and streamed to storage in bounded memory.

Before a byte of the body is read, ``check_request`` refuses what the headers
already tell: not multipart (415), no ``Content-Length`` (411), more bytes than
the largest allowed medium or than the uploader's quota has left (413). The body
is then parsed with ``MediaUploadHandler`` alone: the file part's declared type
must be an allowed one (415), and its bytes go to storage as they arrive
(``storage.StreamingUpload``: one part in memory at most, nothing on disk),
counted against the type's largest size and the quota left, refused (413, the
part sent so far dropped) the moment they pass it. The upload is recorded after
the bytes are stored, outside any transaction (``services.media_upload_record``).
"""
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from core.exceptions import ApplicationError, Unavailable

from . import services, storage

# The largest body an upload may have: the largest medium and the multipart envelope.
MAX_ENVELOPE_BYTES = settings.MAX_REQUEST_BODY_BYTES


class UploadRefused(ApplicationError):
    """An upload refused from its headers or as it streams (a status of 411, 413 or 415)."""


def _largest() -> int:
    return max(limit for limit, _ in services.ALLOWED_TYPES.values())


def check_request(request, *, owner_id: int) -> int:
    """Refuse, from the headers alone, an upload that cannot be taken; else the bytes of
    quota the owner has left (for ``MediaUploadHandler``, so it is read once)."""
    content_type = request.META.get("CONTENT_TYPE", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UploadRefused(f"Unsupported Content-Type {content_type or '(none)'!r}: send the file as "
                            "multipart/form-data, in the field \"file\".", status_code=415)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    if length < 0:
        raise UploadRefused("A Content-Length header is required for uploads.", status_code=411)
    if length > _largest() + MAX_ENVELOPE_BYTES:
        raise UploadRefused(f"Request body larger than {_largest() + MAX_ENVELOPE_BYTES} bytes.", status_code=413)
    left = services.media_quota_left(owner_id)
    if length > left + MAX_ENVELOPE_BYTES:
        raise UploadRefused(f"Media storage quota exceeded: {max(left, 0)} of {settings.MEDIA_QUOTA_BYTES} bytes "
                            f"left, and this upload is {length} bytes.", status_code=413)
    return left


class StoredUpload(UploadedFile):
    """The file part once stored: its name in storage (``Media.key``), type and size."""

    def __init__(self, *, media_name: str, file_name: str, content_type: str, size: int):
        super().__init__(file=None, name=file_name, content_type=content_type, size=size)
        self.media_name = media_name

    def close(self) -> None:  # nothing open: the bytes are in storage
        pass


class MediaUploadHandler(FileUploadHandler):
    """The only upload handler of an upload request: one file, in the field ``file``."""

    def __init__(self, request=None, *, owner_id: int, quota_left: int):
        super().__init__(request)
        self.owner_id = owner_id
        self.quota_left = quota_left  # as check_request read it
        self.stream: storage.StreamingUpload | None = None
        self.limit = 0
        self.media_type = ""

    def new_file(self, field_name, file_name, content_type, content_length, charset=None, content_type_extra=None):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        if field_name != "file" or self.stream is not None:
            self.abort()
            raise UploadRefused("Send one file, in the field \"file\".", status_code=422)
        if content_type not in services.ALLOWED_TYPES:
            raise UploadRefused(f"Unsupported media type {content_type or '(none)'!r}; allowed: "
                                f"{', '.join(services.ALLOWED_TYPES)}.", status_code=415)
        self.media_type = content_type
        self.limit = min(services.ALLOWED_TYPES[content_type][0], self.quota_left)
        self.media_name = services.new_name(owner_id=self.owner_id, content_type=content_type)
        self.stream = storage.StreamingUpload(key=storage.key_of(self.media_name, "upload"),
                                              content_type=content_type)

    def receive_data_chunk(self, raw_data, start):
        assert self.stream is not None
        if self.stream.size + len(raw_data) > self.limit:
            self.abort()
            if self.limit < services.ALLOWED_TYPES[self.media_type][0]:
                raise UploadRefused(f"Media storage quota exceeded: {max(self.quota_left, 0)} bytes left.",
                                    status_code=413)
            raise UploadRefused(f"{self.media_type} uploads are at most {self.limit} bytes.", status_code=413)
        try:
            self.stream.write(raw_data)
        except storage.StorageUnavailable:
            self.abort()
            raise Unavailable("Object storage is unavailable, try again shortly.") from None
        return None

    def file_complete(self, file_size):
        stream = self.stream
        assert stream is not None
        if stream.size == 0:
            self.abort()
            return None  # an empty file is no file: the view's "can't be blank"
        try:
            stream.finish()
        except storage.StorageUnavailable:
            self.abort()
            raise Unavailable("Object storage is unavailable, try again shortly.") from None
        return StoredUpload(media_name=self.media_name, file_name=self.file_name or "file",
                            content_type=self.media_type, size=stream.size)

    def upload_interrupted(self):
        self.abort()

    def abort(self) -> None:
        """Drop what was sent of a file not finished."""
        if self.stream is not None:
            self.stream.abort()

    def discard(self) -> None:
        """Delete the file stored, if any (the request failed after it, before it was recorded)."""
        if self.stream is not None and self.stream.size:
            try:
                storage.delete([self.stream.key])
            except storage.StorageUnavailable:
                pass  # an upload key no row names: nothing shows it, and nothing sweeps it
