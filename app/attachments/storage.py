"""Where attachments' bytes live: a folder (the default), or any S3-compatible store.

Both take a file object and a key of ours (random, never the client's name), hand back
the bytes as a stream of chunks, and delete. A store that cannot be reached raises
`StoreUnavailable`; nothing else in the app knows which store it talks to.
"""

from __future__ import annotations

import errno
import os
import secrets
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

CHUNK = 256 * 1024


class StoreUnavailable(Exception):
    """The store could not be written or read (full disk, S3 down, …)."""


def new_key() -> str:
    return secrets.token_urlsafe(24)


class FolderStore:
    """Files under `root`, two levels of folders by key. A file is written beside its
    final name and renamed into place, so a reader never sees half of one."""

    def __init__(self, root: str):
        self.root = root

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key[:2], key)

    def put(self, key: str, source: BinaryIO, size: int) -> None:
        path = self._path(key)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with tempfile.NamedTemporaryFile(
                dir=os.path.dirname(path), prefix=".part-", delete=False
            ) as out:
                partial = out.name
                while chunk := source.read(CHUNK):
                    out.write(chunk)
            os.replace(partial, path)
        except OSError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def put_file(self, key: str, path: str, size: int) -> None:
        """A finished file of the caller's, moved in: a rename on the same file system
        (the default: the scratch folder is beside the store), else a copy."""
        target = self._path(key)
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(path, target)
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise StoreUnavailable(str(exc)) from exc
        with open(path, "rb") as source:
            self.put(key, source, size)

    def stream(self, key: str) -> tuple[Iterator[bytes], int]:
        path = self._path(key)
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as exc:
            raise StoreUnavailable(str(exc)) from exc

        def chunks():  # opened only once the answer's body is sent, closed with it
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    yield chunk

        return chunks(), size

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def keys_older_than(self, older_than: float) -> Iterator[str]:
        """Every whole file's key written before `older_than` (a Unix time)."""
        if not os.path.isdir(self.root):
            return
        for folder in os.scandir(self.root):
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder.path):
                if not entry.name.startswith(".part-") and entry.stat().st_mtime < older_than:
                    yield entry.name

    def sweep_partial(self, older_than: float) -> int:
        """Remove files left half-written by a process that died mid-upload."""
        removed = 0
        if not os.path.isdir(self.root):
            return 0
        for folder in os.scandir(self.root):
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder.path):
                if entry.name.startswith(".part-") and entry.stat().st_mtime < older_than:
                    try:
                        os.unlink(entry.path)
                        removed += 1
                    except OSError:
                        pass
        return removed


class S3Store:
    """Objects in an S3 bucket (boto3; any S3-compatible server with `endpoint`).
    Credentials come from boto3's usual places (AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY, a profile, an instance role). An upload is one PUT of at most
    CHAT_ATTACHMENT_MAX_BYTES, streamed from the upload's temporary file: an object
    appears whole or not at all, so no partial object is ever left behind."""

    def __init__(self, url: str, endpoint: str | None, region: str):
        import boto3
        from botocore.config import Config

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            config=Config(
                connect_timeout=3,
                read_timeout=20,
                retries={"max_attempts": 2, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _errors(self):
        from botocore.exceptions import BotoCoreError, ClientError

        return BotoCoreError, ClientError

    def put(self, key: str, source: BinaryIO, size: int) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=source,
                ContentLength=size,
                ContentType="application/octet-stream",
            )
        except self._errors() as exc:
            raise StoreUnavailable(str(exc)) from exc

    def put_file(self, key: str, path: str, size: int) -> None:
        with open(path, "rb") as source:
            self.put(key, source, size)

    def stream(self, key: str) -> tuple[Iterator[bytes], int]:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise KeyError(key) from None
            raise StoreUnavailable(str(exc)) from exc
        except self._errors() as exc:
            raise StoreUnavailable(str(exc)) from exc
        body = answer["Body"]

        def chunks():
            try:
                yield from body.iter_chunks(CHUNK)
            finally:
                body.close()

        return chunks(), answer["ContentLength"]

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except self._errors() as exc:
            raise StoreUnavailable(str(exc)) from exc

    def keys_older_than(self, older_than: float) -> Iterator[str]:
        """Every object's key (without the prefix) last written before `older_than`."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    if item["LastModified"].timestamp() < older_than:
                        yield item["Key"].removeprefix(f"{self.prefix}/" if self.prefix else "")
        except self._errors() as exc:
            raise StoreUnavailable(str(exc)) from exc

    def sweep_partial(self, older_than: float) -> int:
        return 0  # single PUTs: S3 keeps no part of an upload that did not finish


def make_store(config) -> FolderStore | S3Store:
    if config["ATTACHMENT_STORE"]:
        return S3Store(
            config["ATTACHMENT_STORE"],
            config["ATTACHMENT_S3_ENDPOINT"],
            config["ATTACHMENT_S3_REGION"],
        )
    return FolderStore(config["ATTACHMENT_DIR"])
