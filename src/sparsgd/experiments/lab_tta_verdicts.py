"""``lab-tta``'s numbers: time to the target per seed, speed-ups, the table and the verdicts.

The runs of one *arm* (link rate, method) are its seeds' cells (:mod:`lab_tta_cells`), in seed
order, the same seeds in every arm. For seed s of an arm with curve (seconds_i, accuracy_i):

    (1) t_s      = seconds_i of the first evaluation i with accuracy_i >= target (None: never)
    (2) final_s  = accuracy at the last evaluation (the step cap)
    (3) speed-up of the arm over a baseline arm, per seed: t_s(baseline) / t_s(arm), over the
        seeds where both reached the target; the table gives the mean and its 95 % Student-t
        interval over seeds (the t interval of :func:`sparsgd.report.stats.paired_diff`
        against 0)
    (4) claim "sooner": :func:`~sparsgd.report.stats.judge` of the scores -t_s paired by seed,
        rule "better"; a cell where some run never reached the target is inconclusive
    (5) claim "at an accuracy not worse": ``judge`` of final_s, rule "not_worse" with the
        studies' margin (0.01) and chance level (0.2)

A smoke run judges nothing: its verdicts read "smoke run: not judged".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sparsgd.experiments.spread import mean_std, spread_text
from sparsgd.experiments.sync_study import CHANCE_LEVEL, MARGIN
from sparsgd.lab.cluster import Rate
from sparsgd.report.results import Finding, Table
from sparsgd.report.stats import PairedDiff, Verdict, judge, paired_diff

__all__ = [
    "BASELINES",
    "RULE_ACCURACY",
    "RULE_SOONER",
    "TTA_COLUMNS",
    "Judgement",
    "final_accuracy",
    "findings",
    "judgements",
    "rate_words",
    "speedups",
    "time_to_target",
    "tta_table",
    "verdict_table",
]

Runs = dict[tuple[str, str], list[dict[str, Any]]]  # (rate, method) -> seeds' results
BASELINES = ("dense", "powersgd")  # speed-ups and claims are against these
PARTS = ("compute", "compress", "comm", "apply")
RULE_SOONER = (
    "paired by seed, score = minus the measured training seconds to the first evaluation at "
    "or above the target, 95% Student-t interval of the difference; agrees if it lies above "
    "0 (sooner), disagrees if below 0, else inconclusive; a cell where some run never reached "
    "the target is inconclusive"
)
RULE_ACCURACY = (
    "paired by seed, score = test accuracy at the last evaluation (the step cap), 95% "
    f"Student-t interval of the difference; not worse if its low end >= -{MARGIN:g}, worse if "
    f"its high end < -{MARGIN:g}, else inconclusive; cells at chance (<= {CHANCE_LEVEL:g}) "
    "inconclusive"
)
SMOKE_EVIDENCE = "smoke run (tiny data, a few steps, one seed): not a result, no claim is judged"
TTA_COLUMNS = [
    *("rate", "method", "seeds at target", "time to target s (95% CI)", "at step"),
    *("speed-up vs dense (95% CI)", "speed-up vs powersgd (95% CI)", "final test accuracy"),
    *("wire MB per node", "training s at cap", "step ms: compute / compress / comm / apply"),
]
NAMES = {"dense": "dense S-SGD", "gtopk": "gTop-k S-SGD", "powersgd": "PowerSGD (DDP hook)"}


def rate_words(rate: str) -> str:
    """``"100mbit"`` -> ``"100 Mbit/s"``."""
    text = str(Rate.parse(rate))
    number = text.rstrip("kmgbit")
    return f"{number} {text[len(number)].upper()}bit/s"


def time_to_target(result: dict[str, Any], target: float) -> tuple[float, int] | None:
    """(1): (seconds, step) of the first evaluation at or above ``target``; None if never."""
    curve = result["curve"]
    for seconds, step, acc in zip(curve["seconds"], curve["step"], curve["accuracy"], strict=True):
        if acc >= target:
            return seconds, step
    return None


def final_accuracy(result: dict[str, Any]) -> float:
    """(2)."""
    return result["curve"]["accuracy"][-1]


def _interval(values: Sequence[float]) -> PairedDiff | None:
    """Mean of ``values`` with its t interval (None for fewer than two values)."""
    return paired_diff(list(values), [0.0] * len(values))


def _mean_text(values: Sequence[float], digits: int, unit: str = "") -> str:
    if not values:
        return "-"
    ci = _interval(values)
    if ci is None:
        return f"{values[0]:.{digits}f}{unit}"
    return f"{ci.mean:.{digits}f}{unit} [{ci.low:.{digits}f}, {ci.high:.{digits}f}]"


def speedups(arm: list[dict[str, Any]], base: list[dict[str, Any]], target: float) -> list[float]:
    """(3): t(base) / t(arm) for each seed where both reached ``target``."""
    ratios = []
    for mine, theirs in zip(arm, base, strict=True):
        a, b = time_to_target(mine, target), time_to_target(theirs, target)
        if a is not None and b is not None and a[0] > 0:
            ratios.append(b[0] / a[0])
    return ratios


def _split(results: list[dict[str, Any]]) -> str:
    splits = [r["time_split_ms"] for r in results if r.get("time_split_ms")]
    if not splits:
        return "(DDP loop: not split)"
    return " / ".join(f"{mean_std([s[p] for s in splits])[0]:.1f}" for p in PARTS)


def tta_table(runs: Runs, target: float, note: str) -> Table:
    """One row per arm: time to target, speed-ups (3), final accuracy, wire MB, time split."""
    rows = []
    for (rate, method), results in runs.items():
        hits = [h for h in (time_to_target(r, target) for r in results) if h is not None]
        row = [rate, method, f"{len(hits)} of {len(results)}", _mean_text([h[0] for h in hits], 1)]
        row.append(f"{mean_std([h[1] for h in hits])[0]:.0f}" if hits else "never")
        for base in BASELINES:
            other = runs.get((rate, base))
            ratios = speedups(results, other, target) if other and base != method else []
            row.append(
                "baseline" if base == method else _mean_text(ratios, 2, "x") if ratios else "-"
            )
        row.append(spread_text([final_accuracy(r) for r in results], 4))
        wire = [sum(r["wire_mb_per_node"]) / len(r["wire_mb_per_node"]) for r in results]
        row.append(round(mean_std(wire)[0], 1))
        row.append(round(mean_std([r["curve"]["seconds"][-1] for r in results])[0], 1))
        row.append(_split(results))
        rows.append(row)
    title = f"Time to {target:.0%} test accuracy on the lab, per link rate and method"
    return Table("tta", title, list(TTA_COLUMNS), rows, note)


@dataclass(frozen=True)
class Judgement:
    """One claim cell: an arm against a baseline arm at one rate, one rule."""

    label: str
    claim: str  # "sooner" | "accuracy"
    baseline: str
    verdict: Verdict


def _sooner(arm: list[dict[str, Any]], base: list[dict[str, Any]], target: float) -> Verdict:
    """(4)."""
    never = [
        f"{sum(time_to_target(r, target) is None for r in runs)} of {len(runs)} {who}"
        for who, runs in (("runs", arm), ("baseline runs", base))
        if any(time_to_target(r, target) is None for r in runs)
    ]
    if never:
        return Verdict("inconclusive", None, f"{' and '.join(never)} never reached {target:g}")
    scores = [[-time_to_target(r, target)[0] for r in runs] for runs in (arm, base)]
    return judge(scores[0], scores[1], rule="better")


def judgements(runs: Runs, target: float) -> list[Judgement]:
    """(4) and (5) for every method but the baselines against each baseline present, at
    every rate."""
    out = []
    for (rate, method), results in runs.items():
        for base in BASELINES:
            if method in BASELINES or (rate, base) not in runs:
                continue
            other = runs[(rate, base)]
            label = f"{rate}: {method} vs {base}"
            out.append(Judgement(label, "sooner", base, _sooner(results, other, target)))
            accuracy = judge(
                [final_accuracy(r) for r in results],
                [final_accuracy(r) for r in other],
                rule="not_worse",
                margin=MARGIN,
                chance_level=CHANCE_LEVEL,
            )
            out.append(Judgement(label, "accuracy", base, accuracy))
    return out


def verdict_table(found: list[Judgement], target: float, smoke: bool) -> Table:
    rows = []
    for j in found:
        what = f"reaches {target:.0%} sooner" if j.claim == "sooner" else "final accuracy not worse"
        if smoke:
            rows.append([j.label, what, "smoke run: not judged", "-"])
        else:
            rows.append([j.label, what, j.verdict.text, j.verdict.word])
    return Table(
        "verdicts",
        "Every method against dense S-SGD and PowerSGD, per link rate, paired by seed",
        ["claim cell", "claim", "paired difference and rule", "verdict"],
        rows,
        f"Sooner: {RULE_SOONER}. Accuracy: {RULE_ACCURACY}.",
    )


def findings(
    found: list[Judgement], rates: Sequence[str], target: float, reduced: str, smoke: bool
) -> list[Finding]:
    """The claims for gTop-k S-SGD (sparsgd train) against each baseline, one per link rate."""
    out = []
    for rate in rates:
        for base in BASELINES:
            cells = {j.claim: j for j in found if j.label == f"{rate}: gtopk vs {base}"}
            claims = (
                ("sooner", f"reaches {target:.0%} test accuracy sooner than", RULE_SOONER),
                ("accuracy", "ends at a test accuracy not worse than", RULE_ACCURACY),
            )
            for kind, text, rule in claims:
                if kind not in cells:
                    continue
                claim = (
                    f"(project) over a {rate_words(rate)} link of the network lab, gTop-k "
                    f"S-SGD {text} {NAMES[base]}"
                )
                if smoke:
                    out.append(Finding(claim, "inconclusive", SMOKE_EVIDENCE, rule, reduced))
                    continue
                verdict = cells[kind].verdict
                out.append(Finding(claim, verdict.word, verdict.text, rule, reduced))
    return out
