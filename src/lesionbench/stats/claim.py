"""The verdict on the study's five expected findings (``results/claim_check.csv``).

Each finding is tested per data set and on all data sets pooled (each data set's cases keeping their own
quartiles and common set), on the ``top_k`` models by overall Dice of this run (the verdict is about these
models, not about the architectures in general), with a numeric criterion written in the row. Settings come
from the ``claim:`` config block (defaults in the schema). docs/statistics.md states the tests.

1. ``dice_tie`` (top models tight under full-test Dice): their all-cases Dice spread (max - min) is at most
   ``claim.dice_tie``, or, with several seeds, at most ``claim.seed_sd_factor`` x the largest seed SD of
   their Dice. Otherwise not_supported. (A bound on a spread, not a test: it has no p-value.)

Findings 2-5 are label-permutation tests (``permutation``; null: the top models are exchangeable within a
case) of a statistic that holds every post-hoc choice of the finding (``claim_statistics``), with the
p-value Holm-adjusted over the data sets and the pooled row (family-wise error ``claim.alpha``). A
boundary difference below the resolution floor (``claim.resolution_floor_voxels`` x the in-plane voxel
spacing) counts as no difference.

2. ``q1_boundary_separation``: on the ``common`` Q1 lesions, the relative spread of HD95 or ASD is at least
   ``claim.min_boundary_spread_pct``, at least ``claim.separation_ratio`` x the all-cases spread and at
   least the floor in absolute terms (statistic ``separation``), and its adjusted p-value <= alpha.
3. ``ranking_change``: on the ``common`` Q1 lesions a pair of top models is reversed under HD95, ASD or
   contour F1 relative to overall Dice (by at least the floor for distances; statistic ``reversal``, the
   largest studentised reversal), adjusted p <= alpha.
4. ``smallest_quartile_strongest``: the mean of the HD95 and ASD relative spreads is largest in Q1
   (statistic ``q1_strongest`` > 0; every quartile needs ``claim.min_lesions`` common lesions), adjusted
   p <= alpha; supported only where finding 2 is.
5. ``large_lesions_align``: mean Kendall tau between the overall-Dice order and the boundary orders is
   higher in Q4 than in Q1 (statistic ``alignment`` > 0), adjusted p <= alpha; supported only where
   finding 3 is.

A finding whose statistic shows no effect at all is not_supported. An effect that is not significant is
not_supported when the data set has at least ``lesions_needed`` common Q1 lesions (the verdict calibration
gives >= 80 % power for the paper's effect there, ``calibration``), else inconclusive with the number of
common Q1 lesions that would decide it. Also inconclusive, with the reason: a failed sanity check the
finding depends on (``DEPENDS_ON``); a stratum with fewer than ``claim.min_lesions`` common lesions; for
findings 2 and 3, top models not tied under Dice.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pandas as pd

from . import claim_statistics as cs
from .calibration import lesions_needed
from .paired_tests import holm
from .permutation import label_data, permutation_tests
from .ranking import ORDER_SEPARATOR
from .strata import COMMON, CaseSums
from .tables import POOLED, QUARTILES, sort_rows

FINDINGS = {
    "dice_tie": "the top models are tight under full-test Dice",
    "q1_boundary_separation": "boundary metrics separate the top models more on Q1 lesions than over all cases",
    "ranking_change": "the model ranking changes across metrics on Q1 lesions",
    "smallest_quartile_strongest": "boundary-metric disagreement is strongest in the smallest size quartile",
    "large_lesions_align": "larger lesions (Q4) align better with the Dice ranking than small ones (Q1)",
}
TESTED = ("q1_boundary_separation", "ranking_change", "smallest_quartile_strongest", "large_lesions_align")
ALL_CHECKS = ("quartiles", "metric_code", "small_lesions", "postprocessing", "connectivity", "completeness", "borders")
DEPENDS_ON = {
    "dice_tie": ("metric_code", "postprocessing", "completeness"),
    "q1_boundary_separation": ALL_CHECKS,
    "ranking_change": ALL_CHECKS,
    "smallest_quartile_strongest": ALL_CHECKS,
    "large_lesions_align": ALL_CHECKS,
}
CLAIM_COLUMNS = [
    "dataset",
    "finding",
    "statement",
    "lesion_set",
    "verdict",
    "criterion",
    "observed",
    "reason",
    "p_value",
    "alpha",
    "lesions_needed",
    "models",
    "depends_on",
]
# Cells left empty: dice_tie has no p-value; lesions_needed only where lesions decide an inconclusive row.
CLAIM_OPTIONAL = ("p_value", "lesions_needed")
VERDICTS = ("supported", "not_supported", "inconclusive")
BOUNDARY = ("hd95", "asd", "contour_f1")


def _fmt(x: float) -> str:
    return "inf" if np.isinf(x) else f"{x:.4g}"


def _row(summary: pd.DataFrame, dataset: str, setting: str, lesion_set: str) -> Any:
    """The summary row of a data set, setting and lesion set (a pandas Series), or None."""
    s = summary[(summary.dataset == dataset) & (summary.setting == setting) & (summary.lesion_set == lesion_set)]
    return s.iloc[0] if len(s) else None


def settings_rng(claim: dict, dataset: str) -> np.random.Generator:
    """The relabelling stream of one data set: independent of which other data sets are configured."""
    seq = np.random.SeedSequence([int(claim["permutation_seed"]), zlib.crc32(dataset.encode())])
    return np.random.default_rng(seq)


def statistics(claim: dict, floor: float) -> dict:
    """{finding: statistic} of the tested findings under the claim settings and a floor (mm)."""
    return {
        "q1_boundary_separation": cs.separation(
            float(claim["min_boundary_spread_pct"]), float(claim["separation_ratio"]), floor
        ),
        "ranking_change": cs.reversal(floor),
        "smallest_quartile_strongest": cs.q1_strongest(floor),
        "large_lesions_align": cs.alignment,
    }


def common_counts(sums: CaseSums) -> dict:
    return {q: sums.n_lesions(q, COMMON) for q in QUARTILES}


def testable(counts: dict, min_lesions: int) -> dict:
    """Which findings have enough common lesions to be tested."""
    q1 = counts["Q1"] >= min_lesions
    return {
        "q1_boundary_separation": q1,
        "ranking_change": q1,
        "smallest_quartile_strongest": all(counts[q] >= min_lesions for q in QUARTILES),
        "large_lesions_align": q1 and counts["Q4"] >= min_lesions,
    }


def run_tests(sums: CaseSums, models, claim: dict, floor: float) -> dict:
    """{finding: PermutationResult} of the testable findings of one data set (raw p-values)."""
    todo = testable(common_counts(sums), int(claim["min_lesions"]))
    stats = {f: s for f, s in statistics(claim, floor).items() if todo[f]}
    if not stats:
        return {}
    data = label_data(sums, models, cs.STAT_KEYS)
    return permutation_tests(data, stats, int(claim["permutations"]), settings_rng(claim, sums.dataset))


# Holm families: a Q1 separation and a ranking change are the two ways the claim can show up, so they share
# one family (over the data sets and pooled); findings 4 and 5 are only supported on top of 2 and 3, so
# the chance of any boundary finding supported on null data is at most alpha.
HOLM_FAMILIES = (
    ("q1_boundary_separation", "ranking_change"),
    ("smallest_quartile_strongest",),
    ("large_lesions_align",),
)


def holm_adjust(raw: dict) -> dict:
    """{(dataset, finding): p} -> Holm-adjusted within each of ``HOLM_FAMILIES`` over the data sets."""
    out: dict = {}
    for family in HOLM_FAMILIES:
        keys = [k for k in raw if k[1] in family]
        if keys:
            out.update(zip(keys, holm(np.array([raw[k] for k in keys], float))))
    return out


def decide(finding: str, observed: float, p_adjusted: float, n_q1: int, alpha: float) -> tuple[str, str, float]:
    """(verdict, reason, lesions_needed or NaN) of a tested finding, before dependencies, tie and sanity."""
    if observed <= 0:
        return "not_supported", NO_EFFECT[finding], np.nan
    if p_adjusted <= alpha:
        return "supported", "", np.nan
    text, needed = _lesions_reason(finding, n_q1)
    if not np.isnan(needed) and n_q1 >= needed:
        reason = (
            f"not significant (adjusted p {_fmt(p_adjusted)} > {_fmt(alpha)}) with enough common Q1 lesions "
            f"({n_q1}) for 80% power at the paper's effect"
        )
        return "not_supported", reason, np.nan
    return "inconclusive", f"not significant (adjusted p {_fmt(p_adjusted)} > {_fmt(alpha)}); {text}", needed


DEPENDENT = {"smallest_quartile_strongest": "q1_boundary_separation", "large_lesions_align": "ranking_change"}


def gate(verdicts: dict) -> dict:
    """{finding: verdict} with findings 4 and 5 held to 2 and 3: supported only where their base is."""
    out = dict(verdicts)
    for dependent, base in DEPENDENT.items():
        if out.get(dependent) == "supported" and out.get(base) != "supported":
            out[dependent] = "inconclusive"
    return out


def _failed_checks(sanity: pd.DataFrame, dataset: str, finding: str) -> tuple[list[str], list[str]]:
    rows = sanity if dataset == POOLED else sanity[sanity.dataset == dataset]
    rows = rows[rows.check.isin(DEPENDS_ON[finding])]
    label = (lambda r: f"{r.check} ({r.dataset})") if dataset == POOLED else (lambda r: r.check)
    return (
        [label(r) for r in rows.itertuples() if r.status == "fail"],
        [label(r) for r in rows.itertuples() if r.status == "warn"],
    )


def _identity(sums: CaseSums, models) -> tuple[np.ndarray, np.ndarray]:
    data = label_data(sums, models, cs.STAT_KEYS)
    return np.moveaxis(data.x, 0, 1)[None], data.den


def _describe(sums: CaseSums, models, floor: float) -> dict:
    """The observed text of the tested findings (identity labelling)."""
    x, den = _identity(sums, models)
    parts = []
    for m in cs.DISTANCES:
        q1, gap = cs.relative_spread(cs.means(x, den, (COMMON, "Q1", m)))
        overall, _ = cs.relative_spread(cs.means(x, den, ("all", "overall", m)))
        parts.append(
            f"{m.upper()} {_fmt(q1[0])}% ({_fmt(gap[0])} mm) on common Q1 vs {_fmt(overall[0])}% over all cases"
        )
    dis = cs.quartile_disagreement(x, den, floor)[0]
    counts = common_counts(sums)
    tau = {q: float(cs.kendall_tau_to_dice(x, den, q)[0]) for q in ("Q1", "Q4")}
    return {
        "q1_boundary_separation": "; ".join(parts),
        "ranking_change": f"largest studentised reversal {{stat}} (floor {_fmt(floor)} mm)",
        "smallest_quartile_strongest": ", ".join(
            f"{q} {_fmt(v)}% ({counts[q]} lesions)" for q, v in zip(QUARTILES, dis)
        ),
        "large_lesions_align": f"tau Q4 {_fmt(tau['Q4'])}, Q1 {_fmt(tau['Q1'])}",
    }


CRITERIA = {
    "q1_boundary_separation": (
        "common-Q1 relative spread of HD95 or ASD >= {spread}% and >= {ratio} x its all-cases relative spread and "
        "best-vs-worst >= {floor} mm; permutation p (max over HD95/ASD, Holm over data sets) <= {alpha}"
    ),
    "ranking_change": (
        "on common Q1 lesions a pair of top models is reversed under HD95, ASD or contour F1 relative to overall "
        "Dice (distances by >= {floor} mm); permutation p of the largest studentised reversal (Holm) <= {alpha}"
    ),
    "smallest_quartile_strongest": (
        "mean of the HD95 and ASD relative spreads of the top models on common lesions is largest in Q1; "
        "permutation p of Q1 minus the largest other quartile (Holm) <= {alpha}"
    ),
    "large_lesions_align": (
        "mean Kendall tau between the top models' overall-Dice order and their HD95/ASD/contour-F1 orders on "
        "common lesions is higher in Q4 than in Q1; permutation p (Holm) <= {alpha}"
    ),
}
NO_EFFECT = {
    "q1_boundary_separation": "neither HD95 nor ASD meets the spread criteria above the resolution floor",
    "ranking_change": "no pair of top models is reversed by more than the resolution floor",
    "smallest_quartile_strongest": "disagreement is not strongest in Q1",
    "large_lesions_align": "Q4 does not align better than Q1",
}


def _lesions_reason(finding: str, n_q1: int) -> tuple[str, float]:
    """Text saying how many common Q1 lesions would decide the finding, and that number (NaN if unknown)."""
    needed = lesions_needed(finding)
    if needed is None:
        return "the verdict calibration reaches 80% power for the paper's effect at no lesion count it ran", np.nan
    return (
        f"about {needed} common Q1 lesions would decide it (80% power for the paper's effect in the verdict "
        f"calibration; this data set has {n_q1})",
        float(needed),
    )


def claim_check(
    summary: pd.DataFrame,
    sanity: pd.DataFrame,
    sums: dict[str, CaseSums],
    claim: dict,
    floors: dict[str, float],
) -> pd.DataFrame:
    """The five findings for every data set of the summary (``pooled`` included); ``sums``: the per-case
    sums of each of those data sets (the pooled one included), ``floors``: the resolution floor (mm) of each."""
    tie, sd_factor = float(claim["dice_tie"]), float(claim["seed_sd_factor"])
    min_lesions, alpha = int(claim["min_lesions"]), float(claim["alpha"])
    datasets = list(summary["dataset"].unique())
    missing = [d for d in datasets if d not in sums or d not in floors]
    if missing:
        raise ValueError(f"claim check: no per-case sums or resolution floor for data set(s) {missing}")

    tests, raw, described, scope, tied, overall_rows = {}, {}, {}, {}, {}, {}
    for dataset in datasets:
        overall = _row(summary, dataset, "all_cases", "all")
        models = overall.top_models.split(ORDER_SEPARATOR)
        scope[dataset] = (
            f"top {len(models)} of the {overall.n_models} models of this run by overall Dice: {overall.top_models}"
        )
        overall_rows[dataset] = overall
        tests[dataset] = run_tests(sums[dataset], models, claim, floors[dataset]) if len(models) > 1 else {}
        raw.update({(dataset, f): r.p_value for f, r in tests[dataset].items()})
        described[dataset] = _describe(sums[dataset], models, floors[dataset]) if len(models) > 1 else {}
    adjusted = holm_adjust(raw)

    rows = []
    for dataset in datasets:
        overall = overall_rows[dataset]
        counts = common_counts(sums[dataset])
        results: dict[str, tuple] = {}

        # 1. Dice tie (a bound, no test)
        n_seeds = int(overall.n_seeds)
        bound = max(tie, sd_factor * float(overall.dice_seed_sd)) if n_seeds > 1 else tie
        crit = f"all-cases Dice spread of the top models <= {_fmt(tie)}" + (
            f" or <= {_fmt(sd_factor)} x their largest seed SD" if n_seeds > 1 else " (one seed)"
        )
        obs = (
            f"Dice spread {_fmt(overall.dice_spread)}, largest seed SD {_fmt(overall.dice_seed_sd)}, {n_seeds} seed(s)"
        )
        tied[dataset] = is_tied = float(overall.dice_spread) <= bound
        apart = f"the top models are {_fmt(overall.dice_spread)} apart in Dice (> {_fmt(bound)})"
        results["dice_tie"] = ("all", "supported" if is_tied else "not_supported", crit, obs, "" if is_tied else apart)
        results["dice_tie"] += (np.nan, np.nan)

        # 2-5. permutation tests
        fmt = {
            "spread": _fmt(float(claim["min_boundary_spread_pct"])),
            "ratio": _fmt(float(claim["separation_ratio"])),
            "floor": _fmt(floors[dataset]),
            "alpha": _fmt(alpha),
        }
        for finding in TESTED:
            crit = CRITERIA[finding].format(**fmt)
            test = tests[dataset].get(finding)
            needed = np.nan
            if test is None:
                few = [q for q in QUARTILES if counts[q] < min_lesions]
                if finding == "large_lesions_align":
                    few = [q for q in ("Q1", "Q4") if q in few]
                elif finding != "smallest_quartile_strongest":
                    few = ["Q1"] if counts["Q1"] < min_lesions else []
                obs = ", ".join(f"{counts[q]} common {q} lesions" for q in QUARTILES)
                reason = (
                    f"too few common lesions in {', '.join(few)} (< {min_lesions})"
                    if few
                    else "fewer than two top models: nothing to compare"
                )
                if "Q1" in few:
                    text, needed = _lesions_reason(finding, counts["Q1"])
                    reason += f"; {text}"
                results[finding] = (COMMON, "inconclusive", crit, obs, reason, np.nan, needed)
                continue
            p = float(adjusted[(dataset, finding)])
            kind = "exact enumeration of" if test.exact else "Monte Carlo,"
            obs = described[dataset][finding].replace("{stat}", _fmt(test.observed))
            obs += (
                f"; statistic {_fmt(test.observed)}, raw p {_fmt(test.p_value)} "
                f"({kind} {test.n_permutations} relabellings)"
            )
            verdict, reason, needed = decide(finding, test.observed, p, counts["Q1"], alpha)
            results[finding] = (COMMON, verdict, crit, obs, reason, p, needed)

        gated = gate({f: r[1] for f, r in results.items()})
        for dependent, base in DEPENDENT.items():
            r = results[dependent]
            if gated[dependent] != r[1]:
                what = "Q1 separation" if base == "q1_boundary_separation" else "Q1 reordering"
                reason = f"no established {what} to compare ({base} is {results[base][1]})"
                results[dependent] = (r[0], gated[dependent], r[2], r[3], reason, r[5], r[6])

        for finding, (lesion_set, verdict, crit, obs, reason, p_value, needed) in results.items():
            failed, warned = _failed_checks(sanity, dataset, finding)
            reasons = [reason] if reason else []
            if failed and verdict != "inconclusive":
                reasons.insert(0, f"failed sanity check(s): {', '.join(failed)} (verdict would be {verdict})")
                verdict = "inconclusive"
            elif failed:
                reasons.append(f"failed sanity check(s): {', '.join(failed)}")
            if (
                finding in ("q1_boundary_separation", "ranking_change")
                and not tied[dataset]
                and verdict != "inconclusive"
            ):
                reasons.insert(0, f"the top models are not tied under Dice (verdict would be {verdict})")
                verdict = "inconclusive"
            if warned:
                reasons.append(f"warning: {', '.join(warned)}")
            rows.append(
                {
                    "dataset": dataset,
                    "finding": finding,
                    "statement": FINDINGS[finding],
                    "lesion_set": lesion_set,
                    "verdict": verdict,
                    "criterion": crit,
                    "observed": obs,
                    "reason": "; ".join(reasons)
                    if reasons
                    else "criterion met"
                    if verdict == "supported"
                    else "criterion not met",
                    "p_value": p_value,
                    "alpha": alpha,
                    "lesions_needed": needed,
                    "models": scope[dataset],
                    "depends_on": ";".join(DEPENDS_ON[finding]),
                }
            )
    out = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    out["lesions_needed"] = out["lesions_needed"].astype("Int64")
    out["finding_order"] = out["finding"].map(list(FINDINGS).index)
    return sort_rows(out, ["dataset", "finding_order"]).drop(columns="finding_order")


def boundary_verdicts(sums: dict[str, CaseSums], claim: dict, floors: dict[str, float]) -> dict:
    """{(dataset, finding): verdict} of the tested findings on every model of each data set (the pooled one
    included in ``sums`` if wanted), Dice tie and sanity checks taken as passed: the decision rule the
    verdict calibration measures."""
    tests = {d: run_tests(s, list(s.models), claim, floors[d]) for d, s in sums.items()}
    adjusted = holm_adjust({(d, f): r.p_value for d, t in tests.items() for f, r in t.items()})
    alpha, out = float(claim["alpha"]), {}
    for d, s in sums.items():
        n_q1 = s.n_lesions("Q1", COMMON)
        verdicts = {
            f: decide(f, tests[d][f].observed, adjusted[(d, f)], n_q1, alpha)[0] if f in tests[d] else "inconclusive"
            for f in TESTED
        }
        out.update({(d, f): v for f, v in gate(verdicts).items()})
    return out
