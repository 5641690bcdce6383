"""S3ObjectStore over real HTTP against moto's S3 server (MinIO is the production target)."""

from __future__ import annotations

import secrets

import pytest
from minio import Minio
from minio.error import S3Error
from moto.server import ThreadedMotoServer

from cases.store import (
    EvidenceSettings,
    InvalidKeyError,
    ObjectExistsError,
    ObjectNotFoundError,
    ObjectStore,
    S3ObjectStore,
    StoreConfigError,
    make_store,
)

ACCESS, SECRET = "feixian-test", "feixian-test-secret"


@pytest.fixture(scope="module")
def endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


@pytest.fixture
def bucket() -> str:
    return f"feixian-{secrets.token_hex(4)}"


def _client(endpoint: str) -> Minio:
    return Minio(endpoint, access_key=ACCESS, secret_key=SECRET, secure=False)


def test_creates_the_bucket_and_round_trips(endpoint, bucket):
    store = S3ObjectStore(endpoint, ACCESS, SECRET, bucket, secure=False)
    assert isinstance(store, ObjectStore)
    assert _client(endpoint).bucket_exists(bucket)
    key = "evidence/P1/2026/01/02/e1/clip.mp4"
    assert not store.exists(key)
    store.put(key, b"\x00\x01mp4", "video/mp4")
    assert store.exists(key)
    assert store.get(key) == b"\x00\x01mp4"
    assert _client(endpoint).stat_object(bucket, key).content_type == "video/mp4"


def test_write_once_keeps_the_first_object(endpoint, bucket):
    store = S3ObjectStore(endpoint, ACCESS, SECRET, bucket, secure=False)
    store.put("evidence/a", b"first", "text/plain")
    with pytest.raises(ObjectExistsError, match="evidence/a"):
        store.put("evidence/a", b"second", "text/plain")
    assert store.get("evidence/a") == b"first"


def test_missing_objects_and_bad_keys(endpoint, bucket):
    store = S3ObjectStore(endpoint, ACCESS, SECRET, bucket, secure=False)
    with pytest.raises(ObjectNotFoundError, match="evidence/none"):
        store.get("evidence/none")
    with pytest.raises(InvalidKeyError):
        store.put("../escape", b"x", "text/plain")
    with pytest.raises(InvalidKeyError):
        store.list("../")


def test_list_by_prefix(endpoint, bucket):
    store = S3ObjectStore(endpoint, ACCESS, SECRET, bucket, secure=False)
    for key in ["evidence/P2/b", "evidence/P1/z", "evidence/P1/a", "other/x"]:
        store.put(key, b"x", "text/plain")
    assert store.list("evidence/P1/") == ["evidence/P1/a", "evidence/P1/z"]
    assert store.list("evidence/") == ["evidence/P1/a", "evidence/P1/z", "evidence/P2/b"]
    assert len(store.list()) == 4


def test_object_lock_keeps_objects_under_compliance_retention(endpoint, bucket):
    store = S3ObjectStore(endpoint, ACCESS, SECRET, bucket, secure=False, object_lock_days=30)
    store.put("evidence/locked", b"original", "application/octet-stream")
    client = _client(endpoint)
    info = client.stat_object(bucket, "evidence/locked")
    assert info.metadata["x-amz-object-lock-mode"] == "COMPLIANCE"
    with pytest.raises(S3Error):
        client.remove_object(bucket, "evidence/locked", version_id=info.version_id)
    assert store.get("evidence/locked") == b"original"


def test_object_lock_on_a_bucket_made_without_it_is_a_config_error(endpoint, bucket):
    S3ObjectStore(endpoint, ACCESS, SECRET, bucket, secure=False)
    with pytest.raises(StoreConfigError, match="without object lock"):
        S3ObjectStore(endpoint, ACCESS, SECRET, bucket, secure=False, object_lock_days=7)


def test_make_store_reads_credentials_from_the_named_env_vars(endpoint, bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("FX_TEST_S3_ACCESS", ACCESS)
    monkeypatch.setenv("FX_TEST_S3_SECRET", SECRET)
    settings = EvidenceSettings(
        backend="s3",
        s3_endpoint=endpoint,
        s3_bucket=bucket,
        s3_secure=False,
        s3_access_key_env="FX_TEST_S3_ACCESS",
        s3_secret_key_env="FX_TEST_S3_SECRET",
    )
    store = make_store(settings, tmp_path)
    assert isinstance(store, S3ObjectStore)
    store.put("evidence/x", b"x", "text/plain")
    assert _client(endpoint).stat_object(bucket, "evidence/x").size == 1
    assert not (tmp_path / "evidence").exists()
