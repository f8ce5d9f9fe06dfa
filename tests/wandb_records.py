"""Read the records of an offline W&B run (``run-<id>.wandb``) in tests: the exit code, the preempting mark.

W&B writes them as LevelDB-log records (32 KiB blocks; each chunk a 7-byte header: CRC, length, type) after
a 7-byte file header, each record a ``wandb_internal_pb2.Record``. W&B ships no Python reader for it."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path

BLOCK = 32768
FULL, FIRST, LAST = 1, 2, 4


def records(path: str | Path) -> Iterator:
    """Every ``Record`` of the offline run file ``path``, in order."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    position, chunks = 7, []
    while position + 7 <= len(data):
        left = BLOCK - position % BLOCK
        if left < 7:  # a block's tail too short for a header is padding
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if length == 0 and kind == 0:
            position += left
            continue
        chunk = data[position + 7:position + 7 + length]
        position += 7 + length
        chunks = [chunk] if kind in (FULL, FIRST) else [*chunks, chunk]
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(chunks))
            yield record


def wandb_records(path: str | Path, timeout: float = 30.0) -> list:
    """The records of a finished offline run file ``run-<id>.wandb`` (W&B 0.31's core writes offline runs only
    there, no ``files/wandb-summary.json``; ``wandb sync`` uploads it), once its ``exit`` record is on disk:
    ``wandb.finish()`` returns before W&B's core has written the file (seen under CPU load: no history or
    summary yet, all of it 2 s later). After ``timeout`` seconds, what is there."""
    from google.protobuf.message import DecodeError

    deadline = time.monotonic() + timeout
    while True:
        try:
            found = list(records(path))
        except DecodeError:  # a record still being written
            found = []
        if any(r.WhichOneof("record_type") == "exit" for r in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def run_files(run_dir: str | Path) -> list[Path]:
    """The offline W&B run files under a genforge run folder, oldest first."""
    return sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))


def ending(path: str | Path) -> dict:
    """``{"run_id", "exit_code", "preempting"}`` of one offline run file (``exit_code`` ``None`` when the run
    never finished)."""
    found = {"run_id": None, "exit_code": None, "preempting": False}
    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            found["run_id"] = record.run.run_id
        elif kind == "exit":
            found["exit_code"] = record.exit.exit_code
        elif kind == "preempting":
            found["preempting"] = True
    return found
