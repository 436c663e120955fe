"""Atomic file writes: a reader (or a crash) never sees half a file.

    write to  DIR/.NAME.tmp-<pid>   (same folder, so the rename stays on one file system)
    fsync     the temporary file
    os.replace(tmp, DIR/NAME)       # atomic on POSIX and Windows

If anything fails before the rename, the temporary file is removed and the old file (if any)
is left as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_with"]


def atomic_write_with(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary binary file, then rename it onto ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)  # (1) the whole content goes to the temporary file
            f.flush()
            os.fsync(f.fileno())  # (2) on disk before the rename makes it visible
        os.replace(tmp, path)  # (3) atomic switch
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    atomic_write_with(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with the UTF-8 ``text`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
