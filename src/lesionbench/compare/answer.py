"""The answer of a run, where people look: two small tables (``answer/models.csv``, ``answer/verdict.csv``,
shown as ``answer/verdict_display.csv``) that open the report, and ``answer/summary.txt``, the short text
``lesionbench compare`` and ``make run`` print when they finish.

- models: per data set and model, mean case Dice and HD95 with their bootstrap CIs (overall_metrics.csv), Q1
  detection (lesion recall over all Q1 lesions) and Q1 delineation (HD95 over the common Q1 lesions, the
  lesions every model detected) from small_lesion_metrics.csv;
- verdict: each finding of claim_check.csv with its verdict and reason, per data set and pooled.
The terminal text shows the verdict of the pooled data set when there is one, else of the one data set.
"""

from __future__ import annotations

import math
import os

import pandas as pd

from ..io.atomic import atomic_path, write_csv
from ..stats.tables import POOLED

MODEL_COLUMNS = ["dataset", "model", "Dice [95% CI]", "HD95 mm [95% CI]", "Q1 recall", "Q1 HD95 mm (common)"]
VERDICT_COLUMNS = ["dataset", "finding", "verdict", "reason"]
REASON_WIDTH = 90  # characters of a reason in the terminal text (the full reason is in the tables)


def _num(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else f"{float(value):.{digits}g}"


def _with_ci(row) -> str:
    return f"{_num(row.value)} [{_num(row.ci_low)}, {_num(row.ci_high)}]"


def model_table(overall: pd.DataFrame, small: pd.DataFrame) -> pd.DataFrame:
    """One row per data set x model (pooled rows of the tables included, last)."""
    rows = []
    for (dataset, model), o in overall.groupby(["dataset", "model"], sort=False):
        metric = o.set_index("metric")
        q1 = small[(small.dataset == dataset) & (small.model == model)]
        recall = q1[(q1.lesion_set == "all") & (q1.metric == "lesion_recall")]
        hd95 = q1[(q1.lesion_set == "common") & (q1.metric == "hd95")]
        recall_text = (
            f"{_num(recall.value.iloc[0])} ({int(recall.n_lesions.iloc[0])} lesions)" if len(recall) else "n/a"
        )
        if len(hd95):
            r = hd95.iloc[0]
            flag = ", too few" if bool(r.insufficient_lesions) else ""
            hd95_text = f"{_num(r.value)} ({int(r.n_lesions)} lesions{flag})"
        else:
            hd95_text = "n/a"
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "Dice [95% CI]": _with_ci(metric.loc["dice"]) if "dice" in metric.index else "n/a",
                "HD95 mm [95% CI]": _with_ci(metric.loc["hd95"]) if "hd95" in metric.index else "n/a",
                "Q1 recall": recall_text,
                "Q1 HD95 mm (common)": hd95_text,
            }
        )
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def verdict_table(claim: pd.DataFrame) -> pd.DataFrame:
    return claim[VERDICT_COLUMNS].reset_index(drop=True)


def verdict_display(verdict: pd.DataFrame) -> pd.DataFrame:
    """The verdict as the report shows it, five rows whatever the number of data sets: finding, verdict and
    reason of the one data set; with several, one verdict column per data set and pooled, and the reason of
    the pooled verdict (every reason is in claim_check.csv)."""
    names = list(dict.fromkeys(verdict["dataset"]))
    if len(names) <= 1:
        return verdict[["finding", "verdict", "reason"]].reset_index(drop=True)
    wide = verdict.pivot(index="finding", columns="dataset", values="verdict")
    wide = wide.reindex(index=list(dict.fromkeys(verdict["finding"])), columns=names).reset_index()
    head = headline_dataset(verdict)
    reasons = verdict[verdict.dataset == head].set_index("finding")["reason"]
    return wide.assign(**{f"reason ({head})": wide["finding"].map(reasons)})


def difference_line(robustness: pd.DataFrame, dataset: str) -> str | None:
    """The two best models by overall Dice of ``dataset``: their Dice and HD95 differences over all cases with
    the bootstrap CI and sign share (bootstrap_directional_robustness.csv)."""
    rows = robustness[
        (robustness.dataset == dataset)
        & (robustness.lesion_set == "all")
        & (robustness.stratum == "overall")
        & (robustness.dice_rank_a == 1)
        & (robustness.dice_rank_b == 2)
    ].set_index("metric")
    if "dice" not in rows.index:
        return None
    parts = []
    for metric, unit in (("dice", ""), ("hd95", " mm")):
        if metric in rows.index:
            r = rows.loc[metric].to_dict()
            parts.append(
                f"{'Dice' if metric == 'dice' else 'HD95'} {float(r['difference']):+.3g}{unit} "
                f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}] (same sign in {float(r['sign_share']):.0%} of "
                f"resamples)"
            )
    first = rows.loc["dice"].to_dict()
    return f"{first['pair_first']} - {first['pair_second']}: " + "; ".join(parts)


def headline_dataset(verdict: pd.DataFrame) -> str | None:
    names = list(dict.fromkeys(verdict["dataset"]))
    return POOLED if POOLED in names else (names[0] if names else None)


def _short(text: str) -> str:
    text = str(text)
    return text if len(text) <= REASON_WIDTH else text[: REASON_WIDTH - 3] + "..."


def summary_text(
    models: pd.DataFrame, verdict: pd.DataFrame, report: str, n_cases: dict[str, int], difference: str | None = None
) -> str:
    """The terminal summary: one block of models per data set, the headline verdict, where the rest is."""
    lines = []
    widths = {c: max(len(c), *(len(str(v)) for v in models[c])) for c in MODEL_COLUMNS[1:]} if len(models) else {}
    records: list[dict] = models.to_dict("records")
    for dataset in dict.fromkeys(str(r["dataset"]) for r in records):
        cases = f", {n_cases[dataset]} cases" if dataset in n_cases else ""
        lines.append(f"{dataset}{cases}:")
        lines.append("  " + "  ".join(c.ljust(widths[c]) for c in MODEL_COLUMNS[1:]).rstrip())
        for values in (r for r in records if str(r["dataset"]) == dataset):
            lines.append("  " + "  ".join(str(values[c]).ljust(widths[c]) for c in MODEL_COLUMNS[1:]).rstrip())
    head = headline_dataset(verdict)
    if difference:
        lines.append(f"Best two by Dice ({head}): {difference}")
    if head is not None:
        rows = verdict[verdict.dataset == head]
        others = [d for d in dict.fromkeys(verdict.dataset) if d != head]
        elsewhere = f"; per data set in the report: {', '.join(others)}" if others else ""
        lines.append(f"Verdict ({head}{elsewhere}):")
        findings: list[dict] = rows.to_dict("records")
        width = max(len(str(r["finding"])) for r in findings)
        for r in findings:
            lines.append(f"  {str(r['finding']).ljust(width)}  {r['verdict']!s:<13}  {_short(str(r['reason']))}")
    lines.append(f"Report: {report}")
    return "\n".join(lines) + "\n"


def write_answer(
    overall_path,
    small_path,
    claim_path,
    robustness_path,
    models_out,
    verdict_out,
    display_out,
    text_out,
    report: str | os.PathLike,
    n_cases: dict[str, int],
) -> str:
    overall = pd.read_csv(overall_path, dtype={"dataset": str, "model": str})
    small = pd.read_csv(small_path, dtype={"dataset": str, "model": str})
    claim = pd.read_csv(claim_path, dtype={"dataset": str}, keep_default_na=False)
    models = model_table(overall, small)
    verdict = verdict_table(claim)
    robustness = pd.read_csv(robustness_path, dtype={"dataset": str, "pair_first": str, "pair_second": str})
    head = headline_dataset(verdict)
    difference = difference_line(robustness, head) if head is not None else None
    write_csv(models, models_out)
    write_csv(verdict, verdict_out)
    write_csv(verdict_display(verdict), display_out)
    text = summary_text(models, verdict, str(report), n_cases, difference)
    with atomic_path(text_out, suffix=".txt") as tmp:
        tmp.write_text(text)
    return text
