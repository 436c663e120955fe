"""Finding and reading data files, and the one error every loader raises about them.

A loader is given a folder (``data_dir``) or none. It looks, in this order, in:

    data_dir, data_dir/<subdir>                      when data_dir is given
    $SPARSGD_DATA/<subdir>, then the loader's defaults   when it is not

and takes the first folder holding the files it needs, each either plain or gzip-compressed
(``name`` or ``name.gz``). Anything missing, unreadable or malformed raises
:class:`DataFileError`, whose message names the file, says what is wrong and what to do.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

from sparsgd.data.rank import talk_level

__all__ = ["DATA_ENV", "DataFileError", "find_file", "find_folder", "read_bytes"]

logger = logging.getLogger(__name__)

DATA_ENV = "SPARSGD_DATA"  # optional root folder holding one sub-folder per data set
GZIP_SUFFIX = ".gz"


class DataFileError(ValueError):
    """A data file is missing, unreadable or not in the expected format."""

    def __init__(self, path: Path | str, problem: str, remedy: str) -> None:
        super().__init__(f"{path}: {problem}. {remedy}")
        self.path = Path(path)


def _holds(folder: Path, name: str) -> bool:
    return (folder / name).is_file() or (folder / (name + GZIP_SUFFIX)).is_file()


def _candidates(data_dir: Path | None, subdir: str, defaults: Sequence[Path]) -> list[Path]:
    if data_dir is not None:
        return [data_dir, data_dir / subdir]
    env = os.environ.get(DATA_ENV)
    return ([Path(env) / subdir] if env else []) + list(defaults)


def find_folder(
    data_dir: str | Path | None,
    subdir: str,
    names: Sequence[str],
    remedy: str,
    defaults: Sequence[Path] = (),
) -> Path:
    """The first candidate folder (see the module docstring) that holds all of ``names``."""
    folder = None if data_dir is None else Path(data_dir).expanduser()
    if folder is not None and not folder.is_dir():
        raise DataFileError(folder, "data_dir is not a folder", remedy)
    candidates = _candidates(folder, subdir, defaults)
    for candidate in candidates:
        if all(_holds(candidate, name) for name in names):
            logger.log(talk_level(), "reading %s from %s", subdir, candidate)
            return candidate
    partial = next((c for c in candidates if any(_holds(c, n) for n in names)), None)
    if partial is not None:
        missing = next(n for n in names if not _holds(partial, n))
        raise DataFileError(
            partial / missing, f"file missing (neither it nor {missing}.gz)", remedy
        )
    searched = (
        ", ".join(str(c) for c in candidates)
        if candidates
        else f"nothing (no data_dir given and ${DATA_ENV} unset)"
    )
    raise DataFileError(
        f"{subdir} data folder", f"searched {searched}; none holds {', '.join(names)}", remedy
    )


def find_file(folder: Path, name: str, remedy: str) -> Path:
    """``folder/name``, else ``folder/name.gz``; :class:`DataFileError` when neither exists."""
    for path in (folder / name, folder / (name + GZIP_SUFFIX)):
        if path.is_file():
            return path
    raise DataFileError(folder / name, f"file missing (neither it nor {name}.gz)", remedy)


def read_bytes(path: Path, remedy: str) -> bytes:
    """The file's content, gunzipped when its name ends in ``.gz``."""
    try:
        if path.name.endswith(GZIP_SUFFIX):
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DataFileError(path, f"corrupt or truncated gzip file ({error})", remedy) from error
    except OSError as error:
        raise DataFileError(path, f"cannot be read ({error})", remedy) from error
