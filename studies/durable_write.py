"""Durable writes to the study store: an instance answered "stored" survives a crash.

On a local folder each file gets its final name by a hard link from the spooled upload (no copy), and
``Written`` collects the files and directory entries to sync (``fdatasync``, ``fsync`` of directories) before
the indexing transaction commits. Remote storages (S3) are durable when their write returns. Used by
``studies.ingest`` (split out of it: the ingest module kept the parsing, deduplication and indexing).
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage, storages

logger = logging.getLogger("studies.ingest")  # the messages ingest logged before the split, under its name


class Written:
    """What a transaction wrote to a local folder, made durable (``sync``) before it commits.

    The answer "stored" must survive a crash: each file's bytes (``fdatasync``) and its name (``fsync`` of
    its directory, and of the parent of every directory created for it) reach the disk before the index
    row is committed. A crash before the commit leaves at most a file without a row, which the next
    ingest of that instance replaces. Remote storages (S3) are durable when their write returns."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.directories: set[str] = set()

    def sync(self) -> None:
        if not self.files and not self.directories:
            return
        if len(self.files) > 1:
            # The disk takes the flushes together: in parallel, a batch costs about one flush, not one each.
            list(_sync_pool().map(_fdatasync, self.files))
        else:
            for path in self.files:
                _fdatasync(path)
        for directory in sorted(self.directories, key=len, reverse=True):
            _fsync_directory(directory)


_SYNC_POOL = None
_SYNC_POOL_LOCK = threading.Lock()


def _sync_pool():
    global _SYNC_POOL
    with _SYNC_POOL_LOCK:
        if _SYNC_POOL is None:
            _SYNC_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ingest-fsync")
        return _SYNC_POOL


def _fdatasync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _local_storage() -> FileSystemStorage | None:
    """The default storage when it is exactly Django's local-folder storage (written by link, synced)."""
    storage = storages["default"]
    return storage if type(storage) is FileSystemStorage else None


def _ensure_directory(directory: str, written: Written) -> None:
    """Create ``directory`` (and missing parents) as the storage would, noting which names need a sync."""
    if os.path.isdir(directory):
        return
    missing = []
    current = directory
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    storage = _local_storage()
    mode = storage.directory_permissions_mode if storage is not None else None
    for path in reversed(missing):
        try:
            if mode is not None:
                old_umask = os.umask(0o777 & ~mode)
                try:
                    os.mkdir(path, mode)
                finally:
                    os.umask(old_umask)
            else:
                os.mkdir(path)
        except FileExistsError:
            pass
        written.directories.add(os.path.dirname(path))  # the new name lives in the parent


def write_file(key: str, path: str, written: Written | None = None) -> None:
    """Write under exactly ``key``, as the last step of the indexing transaction.

    A file already at the key has no row (a crash between write and commit left it): replace it.
    If the write fails, the exception rolls the index back and the partial file is removed. On a local
    folder the spooled file gets its final name by a hard link (no copy) and ``written`` collects what to
    sync before the commit.
    """
    written = written if written is not None else Written()
    try:
        storage = _local_storage()
        if storage is not None and _link_into_place(storage, key, path, written):
            return
        if default_storage.exists(key):
            default_storage.delete(key)
        with open(path, "rb") as fh:
            saved = default_storage.save(key, File(fh, name=os.path.basename(key)))
        if saved != key:
            default_storage.delete(saved)
            raise OSError(f"storage saved {saved!r} instead of {key!r}")
        if storage is not None:
            final = storage.path(key)
            written.files.append(final)
            written.directories.add(os.path.dirname(final))
    except Exception:
        logger.exception("storing %s failed; the index change is rolled back", key)
        if default_storage.exists(key):
            default_storage.delete(key)
        raise


_NO_LINK_ERRNOS = {errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EOPNOTSUPP}


def _link_into_place(storage: FileSystemStorage, key: str, path: str, written: Written) -> bool:
    """Give the spooled file its final name in the local folder by a hard link; False where links are
    not possible (another file system): the caller copies then. The spooled name stays, so that a
    rolled-back batch can still store it one instance at a time."""
    final = storage.path(key)
    directory = os.path.dirname(final)
    _ensure_directory(directory, written)
    try:
        try:
            os.link(path, final)
        except FileExistsError:
            os.unlink(final)  # no row points at it (we hold the instance's index row, not yet committed)
            os.link(path, final)
    except OSError as exc:
        if exc.errno in _NO_LINK_ERRNOS:
            return False
        raise
    if storage.file_permissions_mode is not None:
        os.chmod(final, storage.file_permissions_mode)
    written.files.append(final)
    written.directories.add(directory)
    return True
