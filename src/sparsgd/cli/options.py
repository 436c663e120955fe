"""Command-line options made from the fields of a config dataclass, and read back from them.

A field is an option when its metadata holds a ``help`` text; the field itself is then the one
source of the option's name, type, default, help and valid values:

    lr: float = field(default=0.1, metadata={"help": "learning rate", "group": "optimisation"})
        -> --lr LR     (float, default 0.1)   help "learning rate (default 0.1)"

Metadata keys: ``help`` (required), ``group`` (argparse group title), ``flag`` (the option
string when it is not ``--`` + name with ``-`` for ``_``, e.g. ``--timeout`` for ``timeout_s``
or ``--no-progress`` for a switch that is on by default), ``metavar``, ``choices`` (names listed
in the help), ``sync_only`` (a synchronous-only setting, refused by ``--mode async | sim``)
and ``modes`` (the modes an option applies to; ``sparsgd train`` refuses it with the others).

(1) the flag: ``metadata["flag"]``, else ``--`` + the name with ``_`` -> ``-``;
(2) the kind, from the annotation (``X | None`` counts as ``X``): ``bool`` -> a switch that
    flips the default; ``tuple[float, ...]`` -> comma-separated numbers (``30,60``); ``int``,
    ``float``, ``str`` -> that type;
(3) the help: the text, then ``one of: a, b`` from ``choices``, then ``(default X)`` unless
    the text already speaks of its default;
(4) back: :func:`option_values` reads the parsed value of every option field by its name, and
    :func:`given_options` the names of those given on the command line (a value equal to the
    default counts as given: ``--momentum 0.5`` beats a preset's momentum even when 0.5 is the
    default).

``choices`` are listed, never enforced by argparse: the config's own checks refuse a bad name,
with the parameter, the value and the valid names, and the command exits 2 without starting.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Collection, Mapping
from typing import Any

__all__ = [
    "add_options",
    "comma_floats",
    "flag_of",
    "given_options",
    "option_fields",
    "option_values",
]

GIVEN = "_given_options"  # attribute of the parsed namespace: the fields given on the line


def comma_floats(text: str) -> tuple[float, ...]:
    """``"30,60"`` -> ``(30.0, 60.0)``; the empty string gives ``()``."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 30,60; got {text!r}"
        ) from None


def option_fields(cls: type, exclude: Collection[str] = ()) -> list[dataclasses.Field]:
    """The fields of dataclass ``cls`` that are options (metadata ``help``), in field order."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"cls must be a dataclass; got {cls!r}")
    return [f for f in dataclasses.fields(cls) if "help" in f.metadata and f.name not in exclude]


def flag_of(f: dataclasses.Field) -> str:
    """Step (1): the option string of field ``f``."""
    return f.metadata.get("flag", "--" + f.name.replace("_", "-"))


def _base_type(annotation: Any) -> Any:
    """``int | None`` -> ``int``; other annotations unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kept = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(kept) != 1:
            raise TypeError(f"an option field needs one type besides None; got {annotation}")
        return kept[0]
    return annotation


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None  # a required field: the command line leaves it unset (e.g. --out)


def _help(f: dataclasses.Field, default: Any, note: str | None) -> str:
    """Step (3)."""
    text = f.metadata["help"]
    if f.metadata.get("choices"):
        text += "; one of: " + ", ".join(str(c) for c in f.metadata["choices"])
    if note:
        text += "; " + note
    unset = default is None or default == () or isinstance(default, bool)  # a switch says it
    if "default" not in text and not unset:
        text += f" (default {default})"
    return text.replace("%", "%%")  # argparse formats help with %


class _Given(argparse.Action):
    """Store the option's value (a switch: its constant) and note its field as given."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        setattr(namespace, GIVEN, given_options(namespace) | {self.dest})


def given_options(args: argparse.Namespace) -> frozenset[str]:
    """Step (4): the names of the option fields given on the command line."""
    return frozenset(getattr(args, GIVEN, ()))


def _add_one(
    target: argparse._ActionsContainer, f: dataclasses.Field, kind: Any, note: str | None
) -> None:
    default = _default_of(f)
    settings: dict[str, Any] = {"dest": f.name, "default": default, "action": _Given}
    settings["help"] = _help(f, default, note)
    if kind is bool:  # (2) a switch flips the default
        settings.update(nargs=0, const=not default)
    else:
        if typing.get_origin(kind) is tuple:
            settings["type"] = comma_floats
        elif kind in (int, float, str):
            settings["type"] = kind
        else:
            raise TypeError(f"field {f.name} has a type no option can parse: {kind}")
        if "metavar" in f.metadata:
            settings["metavar"] = f.metadata["metavar"]
    target.add_argument(flag_of(f), **settings)


def add_options(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    exclude: Collection[str] = (),
    notes: Mapping[str, str] | None = None,
) -> dict[str, argparse._ArgumentGroup]:
    """Add one option per option field of ``cls`` to ``parser``; return the groups by title.

    ``notes``: field name -> text added to its help (valid values defined in a higher layer,
    which the config module cannot import). The groups are returned so that the caller can add
    options that are not config fields (``--resume``) beside their relatives.
    """
    hints = typing.get_type_hints(cls)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in option_fields(cls, exclude):
        title = f.metadata.get("group", "options")
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        _add_one(groups[title], f, _base_type(hints[f.name]), (notes or {}).get(f.name))
    return groups


def option_values(
    args: argparse.Namespace, cls: type, exclude: Collection[str] = ()
) -> dict[str, Any]:
    """Step (4): field name -> parsed value for every option field of ``cls``."""
    return {f.name: getattr(args, f.name) for f in option_fields(cls, exclude)}
