"""Atomic file writes: a file is either its old content or its complete new content, never half-written.

The new content goes to a temporary file in the *same folder* (``.<name>.<host>.<pid>.<random>.tmp``), is
flushed to disk (``fsync``), then renamed onto the target (``os.replace``, atomic within one file system)
and the folder entry is flushed too. A process killed at any moment leaves the old file intact and at most
its own temporary file, which the next write of the same target removes once its process is gone.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file or a folder) to disk; folders that cannot be opened (Windows) are skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    """True if a process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files that writers of ``path`` on this host left when they were killed (their
    process no longer exists); returns the removed paths. Temporaries of live processes are kept."""
    host = socket.gethostname()
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        parts = tmp.name[len(path.name) + 2:].split(".")
        # name: .<name>.<host>.<pid>.<random>.tmp; the host may contain dots, the pid and random do not
        try:
            pid = int(parts[-3])
        except (IndexError, ValueError):
            continue
        if ".".join(parts[:-3]) == host and pid != os.getpid() and not _alive(pid):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; once the block has written it, it is flushed to disk and
    renamed onto ``path`` (``os.replace``).

    On an exception the temporary file is removed and ``path`` is left untouched. Parent folders are
    created; temporaries left by killed writers of ``path`` are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{socket.gethostname()}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, path)
        _fsync(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
