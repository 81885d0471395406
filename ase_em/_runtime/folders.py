"""Output folders: can a run write there, and a lock while it does.

Both are cheap (no torch), so the command line checks them before the model loads. The
lock is :class:`filelock.FileLock`, an OS lock (``flock``) on a hidden file in the folder:
the operating system releases it when the process ends, a crash or ``kill -9`` included, so
a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ase_em.errors import AseEmError, FolderLockedError

LOCK_NAME = ".ase-em.lock"


def check_writable(path: str | Path, *, role: str) -> Path:
    """Check that a folder is, or can be created as, a writable directory.

    Walks up to the first existing ancestor: it must be a directory the process may write
    (``os.access``, which also sees a read-only mount, for root too).

    Args:
        path: the folder (need not exist).
        role: what it is in the message, e.g. ``"--output"``.

    Returns:
        The path.

    Raises:
        AseEmError: a regular file on the way, or no write permission.
    """
    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        what = "is" if probe == path else f"cannot be created: {probe} is"
        raise AseEmError(f"{role} {path}: {what} a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        where = "" if probe == path else f" ({probe} is not writable)"
        raise AseEmError(f"{role} {path}: not writable{where}")
    return path


def check_file_target(path: str | Path, *, role: str) -> Path:
    """Check that a file can be written: its folder exists and is writable, it is no folder.

    Args:
        path: the file to write.
        role: what it is in the message, e.g. ``"--plot"``.

    Returns:
        The path.

    Raises:
        AseEmError: the folder is missing or not writable, or the path is a folder.
    """
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise AseEmError(f"{role} {path}: is a folder; give a file name")
    if folder.exists() and not folder.is_dir():
        raise AseEmError(f"{role} {path}: {folder} is a file, not a folder")
    if not folder.is_dir():
        raise AseEmError(f"{role} {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise AseEmError(f"{role} {path}: folder {folder} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise AseEmError(f"{role} {path}: the file is not writable")
    return path


@contextlib.contextmanager
def folder_lock(directory: str | Path, *, role: str = "output folder") -> Iterator[Path]:
    """Hold an exclusive lock on a folder (created if missing) while the block runs.

    The lock does not wait: a second run gets :class:`FolderLockedError` at once. A folder
    the block leaves empty (an early error) is removed again if this call created it.

    Args:
        directory: the folder to lock.
        role: what it is in the message.

    Yields:
        The folder.

    Raises:
        FolderLockedError: another process holds the lock.
        AseEmError: the folder cannot be created or written.
    """
    from filelock import FileLock, Timeout

    directory = Path(directory)
    created = not directory.exists()
    check_writable(directory, role=role)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AseEmError(f"{role} {directory}: cannot be created ({exc.strerror or exc})") from None
    lock_file = directory / LOCK_NAME
    lock = FileLock(lock_file, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise FolderLockedError(
            f"{role} {directory}: another ase-em run is writing it (it holds {lock_file}); wait "
            "for that run to end or choose another folder"
        ) from None
    except OSError as exc:
        raise AseEmError(f"{role} {directory}: cannot be locked ({exc.strerror or exc})") from None
    try:
        yield directory
    finally:
        lock.release()
        if created and [p.name for p in directory.iterdir()] == [LOCK_NAME]:
            # only our lock file: the run wrote nothing, leave no empty folder behind
            with contextlib.suppress(OSError):
                lock_file.unlink()
                directory.rmdir()
