"""Optional TensorBoard events in ``DIR/tensorboard`` (only when the package is installed).

The run folder's ``log.jsonl`` is the record of a run; TensorBoard is a viewer on the same
numbers. ``torch.utils.tensorboard`` needs the ``tensorboard`` package, which sparsgd does not
require: asking for events without it is an error that says how to install it, raised before
any training starts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

__all__ = ["TensorBoardLog", "require_tensorboard"]


def require_tensorboard() -> None:
    """Raise ``RuntimeError`` with the install command when ``tensorboard`` is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        raise RuntimeError(
            "--tensorboard needs the 'tensorboard' package, which is not installed; "
            "install it with `pip install 'sparsgd[tensorboard]'` or drop --tensorboard"
        )


class TensorBoardLog:
    """Writes the numeric fields of log records as scalars, ``tag = KIND/FIELD``."""

    def __init__(self, folder: Path) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter  # needs tensorboard: checked above

        self._writer = SummaryWriter(log_dir=str(folder))

    def log(self, record: dict[str, Any], step: int) -> None:
        kind = str(record.get("kind", "log"))
        for key, value in record.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(f"{kind}/{key}", value, global_step=step)

    def close(self) -> None:
        self._writer.close()
