"""Write-once object storage for evidence (legal requirement 5: originals are kept write-once).

Two backends behind one protocol: `LocalObjectStore` (a folder; the embedded default) and
`S3ObjectStore` (MinIO or another S3 service, optionally with compliance object lock). Keys are
relative, slash-separated paths such as `evidence/JDZ-001/2026/01/01/<event_id>/clip.mp4`.

>>> import tempfile
>>> store = LocalObjectStore(tempfile.mkdtemp())
>>> store.put("evidence/P1/a.txt", b"hello", "text/plain")
>>> store.get("evidence/P1/a.txt"), store.list("evidence/")
(b'hello', ['evidence/P1/a.txt'])
>>> store.put("evidence/P1/a.txt", b"again", "text/plain")
Traceback (most recent call last):
...
cases.store.ObjectExistsError: object already exists: evidence/P1/a.txt
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import MinioException, S3Error, ServerError
from minio.retention import Retention
from pydantic import Field

from feixian.domain import StrictModel

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 512
# Segments start with a letter or digit, so no key can name a hidden file (the local store's temp
# files) or a `.`/`..` directory entry.
_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")


class StoreError(Exception):
    """Base class of object store errors."""


class ObjectExistsError(StoreError):
    """A put named a key that is already stored; stored objects are never replaced."""


class ObjectNotFoundError(StoreError, KeyError):
    """No object is stored under the key."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "object not found"


class InvalidKeyError(StoreError, ValueError):
    """The key is not a safe relative object path."""


class StoreConfigError(StoreError, ValueError):
    """The evidence settings cannot make a store (e.g. a missing S3 credential)."""


class StoreUnavailableError(StoreError):
    """The store did not answer (connection refused, timed out, a 5xx): a fault of the moment, worth retrying."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    stored_at: datetime  # when the store received it (file mtime, S3 LastModified), UTC


def _by_key(obj: StoredObject) -> str:
    return obj.key


def validate_key(key: str) -> str:
    """Return `key` if it is a safe object key, else raise `InvalidKeyError` saying why.

    >>> validate_key("evidence/P1/x.jpg")
    'evidence/P1/x.jpg'
    >>> validate_key("../etc/passwd")
    Traceback (most recent call last):
    ...
    cases.store.InvalidKeyError: invalid object key '../etc/passwd': '..' is not allowed
    """
    if not isinstance(key, str) or not key:
        raise InvalidKeyError(f"invalid object key {key!r}: must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(f"invalid object key {key[:40]!r}...: longer than {MAX_KEY_LENGTH} characters")
    if ".." in key:
        raise InvalidKeyError(f"invalid object key {key!r}: '..' is not allowed")
    if key.startswith("/"):
        raise InvalidKeyError(f"invalid object key {key!r}: must be relative")
    if not _KEY_RE.fullmatch(key):
        raise InvalidKeyError(
            f"invalid object key {key!r}: segments must start with a letter or digit and use only A-Z a-z 0-9 . _ -"
        )
    return key


def _validate_prefix(prefix: str) -> str:
    """A list prefix is empty or a key, optionally ending in '/'."""
    if prefix:
        validate_key(prefix.removesuffix("/"))
    return prefix


@runtime_checkable
class ObjectStore(Protocol):
    """Write-once key/value storage of evidence files."""

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under a new `key`; raise `ObjectExistsError` if the key is taken."""
        ...

    def get(self, key: str) -> bytes:
        """The stored bytes; raise `ObjectNotFoundError` if absent."""
        ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with `prefix`, sorted."""
        ...

    def list_stored(self, prefix: str = "") -> list[StoredObject]:
        """Like `list`, with when each object was stored."""
        ...

    def delete(self, key: str) -> bool:
        """Remove `key`; False if it was not there. Only retention (`cases.retention`) deletes, and never
        an object a case refers to; write-once means no object is ever replaced."""
        ...


class LocalObjectStore:
    """Objects as read-only files under `root`, written atomically and never replaced.

    >>> import tempfile
    >>> store = LocalObjectStore(tempfile.mkdtemp())
    >>> store.exists("evidence/x.bin")
    False
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        if path.exists():
            raise ObjectExistsError(f"object already exists: {key}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".tmp-{path.name}-{secrets.token_hex(6)}"
        try:
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o444)
            # link(), unlike rename(), refuses to replace an existing file, so two writers racing
            # for one key cannot overwrite each other: exactly one wins, atomically.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise ObjectExistsError(f"object already exists: {key}") from None
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFoundError(f"object not found: {key}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        return [o.key for o in self.list_stored(prefix)]

    def list_stored(self, prefix: str = "") -> list[StoredObject]:
        _validate_prefix(prefix)
        # Walk only the deepest folder the prefix names fully, not the whole store.
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / folder
        if not start.is_dir():
            return []
        found = []
        for dirpath, _dirs, files in os.walk(start):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in files:
                if name.startswith("."):
                    continue  # in-flight temp files
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    mtime = os.stat(os.path.join(dirpath, name)).st_mtime
                    found.append(StoredObject(key, datetime.fromtimestamp(mtime, UTC)))
        return sorted(found, key=_by_key)

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        # Empty folders left behind go too, up to the store's root.
        for folder in path.parents:
            if folder == self.root or not folder.is_relative_to(self.root):
                break
            try:
                folder.rmdir()
            except OSError:
                break
        return True

    def path(self, key: str) -> Path:
        """The file holding `key` (for streaming it with range requests); raises if absent."""
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFoundError(f"object not found: {key}")
        return path


def _fsync_dir(folder: Path) -> None:
    # The new directory entry must survive a power cut too, not only the file's bytes.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# A store that does not answer must fail within seconds, so evidence is spooled (`cases.spool`) instead of
# holding the point's worker: minio's default waits 5 minutes to connect and retries 5 times.
_S3_TIMEOUT = urllib3.Timeout(connect=3.0, read=60.0)
_S3_RETRIES = urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504])


@contextmanager
def _answering(endpoint: str) -> Iterator[None]:
    """Turn "the store did not answer" into `StoreUnavailableError`; S3 error replies pass unchanged."""
    try:
        yield
    except S3Error:
        raise
    except (urllib3.exceptions.HTTPError, ServerError, MinioException, OSError) as e:
        raise StoreUnavailableError(f"S3 store at {endpoint} unavailable: {type(e).__name__}: {e}") from e


class S3ObjectStore:
    """Objects in an S3 bucket (MinIO in production), write-once by a stat before each put.

    With `object_lock_days > 0` the bucket is created with object lock and every object is written
    with a COMPLIANCE retention of that many days, so not even the bucket owner can delete an object before then (an
    overwrite only adds a version; the original stays). The stat check keeps the store's own
    write-once contract on buckets without lock. A store that does not answer raises `StoreUnavailableError`;
    one that does not answer at start is set up (bucket, lock check) at its first answer.

    >>> store = S3ObjectStore("127.0.0.1:9000", "key", "secret", "feixian-evidence", secure=False)  # doctest: +SKIP
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = True,
        object_lock_days: int = 0,
        region: str | None = None,
    ):
        if object_lock_days < 0:
            raise StoreConfigError(f"object_lock_days must be >= 0, got {object_lock_days}")
        self.endpoint = endpoint
        self.bucket = bucket
        self.object_lock_days = object_lock_days
        http = urllib3.PoolManager(
            timeout=_S3_TIMEOUT,
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=_S3_RETRIES,
        )
        self._client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region, http_client=http
        )
        self._ready = False
        try:
            self._setup()
        except StoreUnavailableError as e:
            log.warning("%s; evidence is spooled until it answers", e)

    def _setup(self) -> None:
        """Make the bucket and check its lock, once, at the first moment the store answers."""
        if self._ready:
            return
        with _answering(self.endpoint):
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket, object_lock=self.object_lock_days > 0)
            if self.object_lock_days:
                self._require_object_lock()
        self._ready = True

    def _require_object_lock(self) -> None:
        try:
            self._client.get_object_lock_config(self.bucket)
        except S3Error as e:
            if e.code == "ObjectLockConfigurationNotFoundError":
                raise StoreConfigError(
                    f"bucket {self.bucket} exists without object lock, which can only be enabled when a "
                    "bucket is created; use a new bucket or set s3_object_lock_days to 0"
                ) from None
            raise

    def put(self, key: str, data: bytes, content_type: str) -> None:
        validate_key(key)
        self._setup()
        if self.exists(key):
            raise ObjectExistsError(f"object already exists: {key}")
        retention = None
        if self.object_lock_days:
            retention = Retention(COMPLIANCE, datetime.now(UTC) + timedelta(days=self.object_lock_days))
        # The server verifies this checksum before storing, so a corrupted upload is refused rather
        # than kept as evidence; S3 also requires an integrity header on every locked upload.
        checksum = {
            "x-amz-sdk-checksum-algorithm": "SHA256",
            "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
        }
        with _answering(self.endpoint):
            self._client.put_object(
                self.bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
                metadata=checksum,
                retention=retention,
            )

    def get(self, key: str) -> bytes:
        validate_key(key)
        with _answering(self.endpoint):
            try:
                response = self._client.get_object(self.bucket, key)
            except S3Error as e:
                if e.code in ("NoSuchKey", "NoSuchObject", "NoSuchBucket"):
                    raise ObjectNotFoundError(f"object not found: {key}") from None
                raise
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    def exists(self, key: str) -> bool:
        validate_key(key)
        with _answering(self.endpoint):
            try:
                self._client.stat_object(self.bucket, key)
            except S3Error as e:
                if e.code in ("NoSuchKey", "NoSuchObject", "NotFound", "NoSuchBucket"):
                    return False
                raise
        return True

    def list(self, prefix: str = "") -> list[str]:
        return [o.key for o in self.list_stored(prefix)]

    def list_stored(self, prefix: str = "") -> list[StoredObject]:
        _validate_prefix(prefix)
        with _answering(self.endpoint):
            objects = list(self._client.list_objects(self.bucket, prefix=prefix or None, recursive=True))
        return sorted((StoredObject(o.object_name, o.last_modified.astimezone(UTC)) for o in objects), key=_by_key)

    def delete(self, key: str) -> bool:
        """Remove every version of `key`. On a bucket with object lock a plain delete would only hide the object
        behind a delete marker and keep its bytes, so each version is removed by id: a version still under
        compliance retention refuses (`StoreError`) and stays, and the next run tries again."""
        validate_key(key)
        with _answering(self.endpoint):
            versions = [
                o.version_id
                for o in self._client.list_objects(self.bucket, prefix=key, include_version=True)
                if o.object_name == key
            ]
            for version_id in versions:
                try:
                    self._client.remove_object(self.bucket, key, version_id=version_id)
                except S3Error as e:
                    raise StoreError(f"{key} not deleted: {e.code}: {e.message}") from e
        return bool(versions)


class EvidenceSettings(StrictModel):
    """The `evidence:` section of the settings file: the store `make_store` opens, the clip each bundle holds
    (read by the pipeline's workers) and the free-space floor of the evidence disk."""

    backend: Literal["local", "s3"] = "local"
    pre_roll_s: float = Field(default=5.0, ge=0, le=120, description="Seconds of clip before the event.")
    post_roll_s: float = Field(default=5.0, ge=0, le=120, description="Seconds of clip after the event.")
    s3_endpoint: str | None = Field(default=None, description="host:port of MinIO or another S3 service.")
    s3_bucket: str = "feixian-evidence"
    s3_secure: bool = True
    s3_access_key_env: str = Field(default="FEIXIAN_S3_ACCESS_KEY", description="Env var with the access key.")
    s3_secret_key_env: str = Field(default="FEIXIAN_S3_SECRET_KEY", description="Env var with the secret key.")
    s3_object_lock_days: int = Field(default=0, ge=0, description="Compliance retention; 0 = bucket default.")
    min_free_mb: int = Field(
        default=512,
        ge=0,
        le=1_000_000,
        description="The push API refuses frames (507) and /readyz reports the disk while the filesystem of the "
        "evidence folder (under the data dir) has less free space than this; 0 = no check. Evidence half-written "
        "to a full disk would lose the case it belongs to.",
    )


def make_store(settings: EvidenceSettings, data_dir: str | Path) -> ObjectStore:
    """The store the settings name: `<data_dir>/evidence` for local, else S3 with keys from env vars."""
    if settings.backend == "local":
        return LocalObjectStore(Path(data_dir) / "evidence")
    if not settings.s3_endpoint:
        raise StoreConfigError("evidence.backend is s3 but evidence.s3_endpoint is not set")
    missing = [name for name in (settings.s3_access_key_env, settings.s3_secret_key_env) if not os.environ.get(name)]
    if missing:
        raise StoreConfigError(f"evidence.backend is s3 but these environment variables are empty: {missing}")
    return S3ObjectStore(
        settings.s3_endpoint,
        os.environ[settings.s3_access_key_env],
        os.environ[settings.s3_secret_key_env],
        settings.s3_bucket,
        secure=settings.s3_secure,
        object_lock_days=settings.s3_object_lock_days,
    )
