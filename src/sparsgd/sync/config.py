"""Everything one synchronous run needs, checked before any process starts.

``SyncConfig`` is the resolved configuration written to ``config.json``; ``sparsgd train``
builds it from its options and the Python API takes it directly:

    config = SyncConfig(out="runs/demo", model="lenet5", dataset="mnist", data_dir="...",
                        method="gtopk", density=0.001, workers=4, epochs=10)
    check_config(config)                 # names, ranges, combinations (no data needed)
    check_fits_data(config, bundle)      # P against the training set, LM windows

Methods are the collectives of docs/algorithms.md (gTop-k tree) under their user-facing names:
``dense`` (ring allreduce), ``topk`` (Top-k S-SGD, all-gather), ``gtopk`` (gTop-k tree) and
``gtopk_exact`` (the tree's index set with exactly summed values).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sparsgd.compress import MEMORIES
from sparsgd.data import DATASETS, DatasetBundle, split_size
from sparsgd.models import LANGUAGE_MODELS, MODELS
from sparsgd.sync.schedule import DENSITY_WARMUPS, warmup_start_fraction
from sparsgd.worker.tasks import EVAL_COLUMNS

__all__ = [
    "DEVICES",
    "METHODS",
    "TOPK_SELECTIONS",
    "SyncConfig",
    "check_config",
    "check_fits_data",
    "config_from_dict",
]

# user-facing method -> collective of sparsgd.comm
METHODS: dict[str, str] = {
    "dense": "dense",
    "topk": "topk_allgather",
    "gtopk": "gtopk",
    "gtopk_exact": "gtopk_exact",
}
# compressors topk_allgather can use for its local selection (dense would defeat the method)
TOPK_SELECTIONS = ("randomk", "sampled", "threshold", "topk")
DEVICES = ("cpu", "cuda")

# option groups of ``sparsgd train --help`` (field metadata, read by sparsgd.cli.options)
_DATA = "model and data"
_AGG = "gradient aggregation"
_OPT = "optimisation (applied after aggregation)"
_RUN = "workers and run folder"
_NAME = "NAME"


def _option(
    default: Any,
    group: str,
    text: str,
    metavar: str | None = None,
    choices: tuple[str, ...] = (),
    *,
    sync: bool = False,
    flag: str | None = None,
) -> Any:
    """A field that is also a command-line option (``sync``: refused by --mode async | sim)."""
    meta: dict[str, Any] = {"group": group, "help": text, "choices": choices, "sync_only": sync}
    meta.update({k: v for k, v in (("metavar", metavar), ("flag", flag)) if v is not None})
    return field(default=default, metadata=meta)


@dataclass
class SyncConfig:
    """One S-SGD run (see ``sparsgd train --help`` for every field's meaning)."""

    out: str
    model: str = _option("fnn3", _DATA, "network", _NAME, tuple(MODELS))
    dataset: str = _option("digits", _DATA, "data set", _NAME, tuple(DATASETS))
    data_dir: str | None = _option(None, _DATA, "folder of the data files (mnist, cifar10)", "DIR")
    data_file: str | None = _option(
        None,
        _DATA,
        "--dataset npz: a .npz file with x_train, y_train, x_test, y_test (docs/data.md)",
        "FILE",
        sync=True,
    )
    max_tokens: int | None = _option(
        None, _DATA, "language data: keep the first N tokens of each split", "N", sync=True
    )
    hidden_size: int | None = _option(None, _DATA, "hidden width of fnn3 / lstm", "H")
    reduced: bool = _option(
        False, _DATA, "the model's small CPU setting (lstm: 2 x 200)", sync=True
    )
    method: str = _option(
        "gtopk",
        _AGG,
        "dense (ring allreduce), topk (Top-k S-SGD: all-gather, O(kP)), gtopk (gTop-k tree, "
        "O(k log P)), gtopk_exact (tree's indices, exact sums)",
        _NAME,
    )
    compressor: str | None = _option(
        None, _AGG, "topk's local selection (default: exact top-k)", _NAME, TOPK_SELECTIONS
    )
    threshold: float | None = _option(
        None, _AGG, "the fixed |x| >= H of --compressor threshold", "H"
    )
    density: float = _option(
        0.01,
        _AGG,
        "fraction of entries each worker sends, in (0, 1]; k = max(1, floor(RHO d))",
        "RHO",
    )
    memory: str = _option(
        "residual",
        _AGG,
        "error feedback (dgc: DGC momentum correction, uses --momentum)",
        _NAME,
        tuple(MEMORIES),
    )
    density_warmup: float = _option(
        0.0,
        _AGG,
        "density warm-up over the first EPOCHS epochs, then RHO (default 0: none)",
        "EPOCHS",
        sync=True,
    )
    density_warmup_kind: str = _option(
        "dgc",
        _AGG,
        "stages of --density-warmup, never sparser than RHO: dgc: 0.25, 0.0625, 0.0156, "
        "0.004 share the epochs (DGC); gtopk: 0.004 (the gTop-k authors' code)",
        _NAME,
        tuple(DENSITY_WARMUPS),
        sync=True,
    )
    workers: int = _option(4, _RUN, "worker processes to start (ignored under torchrun)", "P")
    lr: float = _option(0.1, _OPT, "learning rate", "LR")
    warmup_epochs: float = _option(
        0.0, _OPT, "linear learning-rate warm-up over E epochs", "E", sync=True
    )
    warmup_start: str = _option(
        "0",
        _OPT,
        "the warm-up starts at S x LR: a number in [0, 1], or 1/P (P workers: the gTop-k "
        "authors' and DGC's start)",
        "S",
        sync=True,
    )
    lr_decay_epochs: tuple[float, ...] = _option(
        (),
        _OPT,
        "multiply the learning rate by --lr-decay-factor at these epochs",
        "E1,E2",
        sync=True,
    )
    lr_decay_factor: float = _option(0.1, _OPT, "factor of each learning-rate decay", "F")
    momentum: float = _option(
        0.5, _OPT, "SGD momentum (with --memory dgc: the momentum-correction factor)", "MU"
    )
    weight_decay: float = _option(0.0, _OPT, "L2 weight decay", "WD", sync=True)
    clip: float | None = _option(
        None,
        _AGG,
        "clip each worker's gradient to this L2 norm before error feedback",
        "NORM",
        sync=True,
    )
    batch_size: int = _option(16, _OPT, "samples (language: columns) per worker per step", "B")
    epochs: float = _option(5.0, _OPT, "passes over the training set", "EPOCHS")
    steps: int | None = _option(None, _OPT, "run exactly this many steps instead of --epochs", "N")
    bptt: int = _option(35, _OPT, "language models: truncated back-propagation length", "L")
    seed: int = _option(0, _OPT, "seed of everything random; same seed, same run", "SEED")
    log_every: int = _option(10, _RUN, "one log.jsonl record every N steps and epoch end", "N")
    checkpoint_every: int = _option(
        0, _RUN, "checkpoint every N steps (default 0: at every epoch end); always at the end", "N"
    )
    keep_checkpoints: int = _option(
        3, _RUN, "how many of the newest checkpoints DIR/checkpoints keeps", "N", sync=True
    )
    verify_every: int = _option(
        0,
        _RUN,
        "every N steps compare a digest of every worker's parameters (default 0: never)",
        "N",
        sync=True,
    )
    device: str = _option(
        "cpu", _RUN, "cuda: NCCL, one GPU per worker", "DEVICE", DEVICES, sync=True
    )
    timeout_s: float = _option(
        300.0, _RUN, "a collective waiting longer fails the run", "SECONDS", flag="--timeout"
    )
    progress: bool = _option(
        True,
        _RUN,
        "no progress bar (it is off anyway when stderr is not a terminal)",
        flag="--no-progress",
    )
    tensorboard: bool = _option(
        False,
        _RUN,
        "also write TensorBoard events to DIR/tensorboard (needs tensorboard)",
    )
    recipe: str | None = _option(
        None,
        _OPT,
        "training preset (sparsgd.sync.recipes, listed below); options given explicitly "
        "override its settings, and it rescales --lr where it says so",
        _NAME,
        sync=True,
    )
    extra: dict[str, Any] = field(default_factory=dict)  # free notes kept in config.json

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lr_decay_epochs"] = list(self.lr_decay_epochs)
        return out

    @property
    def collective(self) -> str:
        return METHODS[self.method]

    @property
    def is_language(self) -> bool:
        return self.model in LANGUAGE_MODELS


def config_from_dict(values: dict[str, Any]) -> SyncConfig:
    """The config stored in ``config.json`` (unknown keys refused, naming them)."""
    known = {f.name for f in fields(SyncConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"config has unknown keys {unknown}; valid keys: {sorted(known)}")
    values = dict(values)
    values["lr_decay_epochs"] = tuple(values.get("lr_decay_epochs", ()))
    return SyncConfig(**values)


def _one_of(value: object, valid: list[str] | tuple[str, ...], name: str) -> None:
    if value not in valid:
        raise ValueError(f"{name} must be one of {sorted(valid)}; got {value!r}")


def _number(
    value: float, name: str, low: float, high: float = math.inf, *, low_open: bool = False
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        upper = "inf)" if high == math.inf else f"{high}]"
        raise ValueError(f"{name} must be in {bracket}{low}, {upper}; got {value!r}")


def _integer(value: int | None, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")


def check_config(c: SyncConfig) -> SyncConfig:
    """Raise ``ValueError`` naming the option, the value and the reason; else return ``c``."""
    _one_of(c.model, list(MODELS), "model")
    _one_of(c.dataset, list(DATASETS), "dataset")
    _one_of(c.method, list(METHODS), "method")
    _one_of(c.memory, list(MEMORIES), "memory")
    _one_of(c.density_warmup_kind, list(DENSITY_WARMUPS), "density_warmup_kind")
    _one_of(c.device.split(":")[0], DEVICES, "device")
    _check_numbers(c)
    _check_combinations(c)
    return c


def _check_numbers(c: SyncConfig) -> None:
    _number(c.density, "density", 0.0, 1.0, low_open=True)
    _number(c.lr, "lr", 0.0, low_open=True)
    _number(c.lr_decay_factor, "lr_decay_factor", 0.0, 1.0, low_open=True)
    _number(c.momentum, "momentum", 0.0, 1.0 - 1e-12)
    _number(c.weight_decay, "weight_decay", 0.0)
    _number(c.warmup_epochs, "warmup_epochs", 0.0)
    _number(c.density_warmup, "density_warmup", 0.0)
    _number(c.epochs, "epochs", 0.0, low_open=True)
    _number(c.timeout_s, "timeout_s", 0.0, low_open=True)
    for d in c.lr_decay_epochs:
        _number(d, "every entry of lr_decay_epochs", 0.0, low_open=True)
    if list(c.lr_decay_epochs) != sorted(set(c.lr_decay_epochs)):
        raise ValueError(
            "lr_decay_epochs must be strictly increasing; got "
            f"{list(c.lr_decay_epochs)} (each epoch multiplies the rate once, in order)"
        )
    if c.clip is not None:
        _number(c.clip, "clip", 0.0, low_open=True)
    if c.threshold is not None:
        _number(c.threshold, "threshold", 0.0, low_open=True)
    _integer(c.workers, "workers", 1)
    _integer(c.batch_size, "batch_size", 1)
    _integer(c.bptt, "bptt", 1)
    _integer(c.seed, "seed", 0)
    _integer(c.log_every, "log_every", 1)
    _integer(c.checkpoint_every, "checkpoint_every", 0)
    _integer(c.keep_checkpoints, "keep_checkpoints", 1)
    _integer(c.verify_every, "verify_every", 0)
    if c.steps is not None:
        _integer(c.steps, "steps", 1)
    warmup_start_fraction(c.warmup_start, c.workers)  # a number in [0, 1] or "1/P"


def _check_combinations(c: SyncConfig) -> None:
    if c.compressor is not None:
        if c.method != "topk":
            raise ValueError(
                f"compressor picks topk's local selection; got compressor={c.compressor!r} "
                f"with method={c.method!r} (use --method topk, or drop --compressor)"
            )
        _one_of(c.compressor, TOPK_SELECTIONS, "compressor")
    if (c.compressor == "threshold") != (c.threshold is not None):
        raise ValueError(
            "threshold is the fixed h of --compressor threshold and is needed exactly then; "
            f"got compressor={c.compressor!r}, threshold={c.threshold!r}"
        )
    if c.memory == "dgc" and c.method == "dense":
        raise ValueError(
            "memory 'dgc' (momentum correction) needs a sparse method: with method 'dense' "
            "nothing stays behind and the momentum would be lost; use --memory none"
        )
    if c.memory == "dgc" and c.momentum == 0.0:
        raise ValueError("memory 'dgc' accumulates momentum: momentum must be > 0; got 0")
    if c.is_language and c.dataset not in ("ptb", "synthetic-lm"):
        raise ValueError(
            f"model {c.model!r} is a language model; dataset must be ptb or "
            f"synthetic-lm; got {c.dataset!r}"
        )
    if not c.is_language and c.dataset in ("ptb", "synthetic-lm"):
        raise ValueError(
            f"dataset {c.dataset!r} is a token stream; model must be one of "
            f"{sorted(LANGUAGE_MODELS)}; got {c.model!r}"
        )


def check_fits_data(c: SyncConfig, bundle: DatasetBundle) -> None:
    """Refuse a worker count the training set cannot feed (before any process starts)."""
    n = bundle.num_train
    if c.workers > n:
        unit = "tokens" if bundle.task == "language" else "samples"
        raise ValueError(
            f"workers must be <= the number of training {unit} ({n}) so that every worker "
            f"gets data; got workers={c.workers}"
        )
    if bundle.task == "language":
        test_rows = split_size(bundle.test) // EVAL_COLUMNS
        if test_rows < 2:
            raise ValueError(
                f"the test stream must hold at least {2 * EVAL_COLUMNS} tokens (it is scored "
                f"in {EVAL_COLUMNS} columns); got {split_size(bundle.test)} (raise --max-tokens)"
            )
        rows = (n // c.workers) // c.batch_size  # (T, B) rows of each worker's stream
        if rows < 2:
            raise ValueError(
                f"each worker's {n // c.workers} training tokens cut into batch_size="
                f"{c.batch_size} columns leave {rows} row(s); need >= 2 (lower --batch-size "
                "or --workers, or raise --max-tokens)"
            )
