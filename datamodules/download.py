"""Checksummed, atomic downloads of dataset files (used only when a config asks: ``data.download=true``)."""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from utils.io import atomic_path


def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The hex MD5 digest of the file at ``path``."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(url: str, dest: str | os.PathLike, md5: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically, checking its MD5.

    The bytes go to a temporary file beside ``dest`` that replaces ``dest`` only once complete and
    verified, so an interrupted or corrupt download never leaves a half file at ``dest``.

    Raises:
        OSError (``urllib.error.URLError``, ``TimeoutError``...): when the download fails.
        ValueError: when the file's MD5 is not ``md5``; ``dest`` is left untouched.
    """
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out)
        if md5 is not None:
            got = md5sum(tmp)
            if got != md5:
                raise ValueError(f"{url}: MD5 {got} does not match the expected {md5}")
    return dest


def download_from_mirrors(name: str, mirrors: Sequence[str], dest: str | os.PathLike, md5: str | None = None,
                          timeout: float = 60.0) -> Path:
    """Try ``mirror + name`` for each mirror in turn until one downloads with the right MD5.

    Raises:
        OSError: when every mirror fails; the message lists each mirror's error.
    """
    errors = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        try:
            return download_file(url, dest, md5=md5, timeout=timeout)
        except (OSError, ValueError, http.client.HTTPException) as e:  # URLError, TimeoutError: OSErrors
            errors.append(f"{url}: {type(e).__name__}: {e}")
    raise OSError(f"could not download {name}:\n  " + "\n  ".join(errors))
