"""The verdict on the study's five expected findings (``results/claim_check.csv``).

Each finding is tested per data set and on all data sets pooled (whose bootstrap resamples each data set's
cases within that data set, ``bootstrap.resampled_datasets``), on the ``top_k`` models by overall Dice of
this run (the verdict is about these models, not about the architectures in general), with a numeric
criterion written in the row. Thresholds come from the ``claim:`` config block (defaults in the schema):

1. ``dice_tie`` (top models tight under full-test Dice): their all-cases Dice spread (max - min) is at most
   ``claim.dice_tie``, or, with several seeds, at most ``claim.seed_sd_factor`` x the largest seed SD of
   their Dice. Otherwise not_supported.
2. ``q1_boundary_separation`` (boundary metrics separate them more in Q1): on the ``common`` Q1 lesions, the
   relative spread ((max - min) / min) of HD95 or of ASD is at least ``claim.min_boundary_spread_pct`` and
   at least ``claim.separation_ratio`` x the same metric's all-cases relative spread, and the
   pair defining that spread (best vs worst of the top models) has a bootstrap sign share >=
   ``claim.min_sign_share``; a spread that noise could make is inconclusive.
3. ``ranking_change`` (model ranking changes across metrics): on the ``common`` Q1 lesions the top models'
   order under HD95, ASD or contour F1 differs from their overall-Dice order, and at least one reversed
   pair has a bootstrap sign share >= ``claim.min_sign_share``. A reversal none of whose pairs reach the
   sign share is inconclusive.
4. ``smallest_quartile_strongest`` (disagreement strongest in the smallest quartile): on the ``common``
   lesions, the mean of the HD95 and ASD relative spreads of the top models is largest in Q1 of Q1..Q4
   (every quartile needs ``claim.min_lesions`` common lesions). Supported only where finding 2 is: without an
   established Q1 separation, the largest spread in Q1 is the noise of the fewest-pixel lesions.
5. ``large_lesions_align`` (larger lesions align better with Dice): on the ``common`` lesions, the mean
   Kendall tau between the top models' overall-Dice order and their HD95/ASD/contour-F1 orders is higher
   in Q4 than in Q1. Supported only where finding 3 is: among tied models, orders that differ by noise alone
   make either quartile "align better" half of the time.

Inconclusive instead of a verdict, with the reason: a failed sanity check the finding depends on
(``DEPENDS_ON``); a stratum whose ``common`` lesions are fewer than ``claim.min_lesions``; for findings 2
and 3, top models not tied under Dice (finding 1 not supported: the claim is about tied models); for finding
3, a reversal not robust under case resampling (with one seed, the seed noise is not measured either).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .ranking import ORDER_SEPARATOR
from .strata import COMMON
from .tables import POOLED, QUARTILES, sort_rows

FINDINGS = {
    "dice_tie": "the top models are tight under full-test Dice",
    "q1_boundary_separation": "boundary metrics separate the top models more on Q1 lesions than over all cases",
    "ranking_change": "the model ranking changes across metrics on Q1 lesions",
    "smallest_quartile_strongest": "boundary-metric disagreement is strongest in the smallest size quartile",
    "large_lesions_align": "larger lesions (Q4) align better with the Dice ranking than small ones (Q1)",
}
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
    "models",
    "depends_on",
]
VERDICTS = ("supported", "not_supported", "inconclusive")
BOUNDARY = ("hd95", "asd", "contour_f1")


def _fmt(x: float) -> str:
    return "inf" if np.isinf(x) else f"{x:.4g}"


def _row(summary: pd.DataFrame, dataset: str, setting: str, lesion_set: str) -> Any:
    """The summary row of a data set, setting and lesion set (a pandas Series), or None."""
    s = summary[(summary.dataset == dataset) & (summary.setting == setting) & (summary.lesion_set == lesion_set)]
    return s.iloc[0] if len(s) else None


def _quartile_disagreement(stratified: pd.DataFrame, dataset: str, models: list[str]) -> tuple[dict, dict]:
    """Mean of the HD95 and ASD relative spreads (%) of ``models`` per quartile on the common lesions (NaN
    where a quartile has no common lesion), and the common-lesion count of each quartile."""
    from .summary import relative_spread_pct

    out, counts = {}, {}
    for q in QUARTILES:
        n = stratified[
            (stratified.dataset == dataset)
            & (stratified.lesion_set == COMMON)
            & (stratified.quartile == q)
            & (stratified.metric == "dice")
        ]["n_lesions"]
        counts[q] = int(n.min()) if len(n) else 0
        spreads = []
        for metric in ("hd95", "asd"):
            d = stratified[
                (stratified.dataset == dataset)
                & (stratified.lesion_set == COMMON)
                & (stratified.quartile == q)
                & (stratified.metric == metric)
                & stratified.model.isin(models)
            ]
            v = d["value"].to_numpy(float)
            spreads.append(relative_spread_pct(v) if len(v) == len(models) and not np.isnan(v).any() else np.nan)
        out[q] = float(np.mean(spreads))
    return out, counts


def _extreme_pair_share(
    stratified: pd.DataFrame, robustness: pd.DataFrame, dataset: str, models: list[str], metric: str
) -> float:
    """Bootstrap sign share of the pair that defines a metric's common-Q1 spread among ``models``: the one
    with the lowest and the one with the highest value (NaN when the pair has no robustness row)."""
    d = stratified[
        (stratified.dataset == dataset)
        & (stratified.lesion_set == COMMON)
        & (stratified.quartile == "Q1")
        & (stratified.metric == metric)
        & stratified.model.isin(models)
    ]
    if len(d) < 2 or d["value"].isna().any():
        return float("nan")
    values, names = d["value"].to_numpy(float), d["model"].to_numpy()
    low, high = names[np.argmin(values)], names[np.argmax(values)]  # first on ties, as idxmin/idxmax
    r = robustness[
        (robustness.dataset == dataset)
        & (robustness.lesion_set == COMMON)
        & (robustness.stratum == "Q1")
        & (robustness.metric == metric)
        & (
            ((robustness.pair_first == low) & (robustness.pair_second == high))
            | ((robustness.pair_first == high) & (robustness.pair_second == low))
        )
    ]
    return float(r["sign_share"].iloc[0]) if len(r) else float("nan")


def _failed_checks(sanity: pd.DataFrame, dataset: str, finding: str) -> tuple[list[str], list[str]]:
    rows = sanity if dataset == POOLED else sanity[sanity.dataset == dataset]
    rows = rows[rows.check.isin(DEPENDS_ON[finding])]
    label = (lambda r: f"{r.check} ({r.dataset})") if dataset == POOLED else (lambda r: r.check)
    return (
        [label(r) for r in rows.itertuples() if r.status == "fail"],
        [label(r) for r in rows.itertuples() if r.status == "warn"],
    )


def claim_check(
    summary: pd.DataFrame, stratified: pd.DataFrame, robustness: pd.DataFrame, sanity: pd.DataFrame, claim: dict
) -> pd.DataFrame:
    """The five findings for every data set of the summary (``pooled`` included)."""
    tie, sd_factor = float(claim["dice_tie"]), float(claim["seed_sd_factor"])
    min_spread, ratio = float(claim["min_boundary_spread_pct"]), float(claim["separation_ratio"])
    min_share, min_lesions = float(claim["min_sign_share"]), int(claim["min_lesions"])
    rows = []
    for dataset in summary["dataset"].unique():
        overall = _row(summary, dataset, "all_cases", "all")
        q1 = _row(summary, dataset, "Q1", COMMON)
        q4 = _row(summary, dataset, "Q4", COMMON)
        models = overall.top_models.split(ORDER_SEPARATOR)
        scope = f"top {len(models)} of the {overall.n_models} models of this run by overall Dice: {overall.top_models}"
        results = {}

        # 1. Dice tie
        n_seeds = int(overall.n_seeds)
        bound = max(tie, sd_factor * float(overall.dice_seed_sd)) if n_seeds > 1 else tie
        crit = f"all-cases Dice spread of the top models <= {_fmt(tie)}" + (
            f" or <= {_fmt(sd_factor)} x their largest seed SD" if n_seeds > 1 else " (one seed)"
        )
        obs = (
            f"Dice spread {_fmt(overall.dice_spread)}, largest seed SD {_fmt(overall.dice_seed_sd)}, {n_seeds} seed(s)"
        )
        tied = float(overall.dice_spread) <= bound
        apart = f"the top models are {_fmt(overall.dice_spread)} apart in Dice (> {_fmt(bound)})"
        results["dice_tie"] = ("all", "supported" if tied else "not_supported", crit, obs, "" if tied else apart)

        q1_ok = q1 is not None and int(q1.n_lesions) >= min_lesions and not pd.isna(q1.dice_spread)
        n_q1 = 0 if q1 is None else int(q1.n_lesions)
        n_q4 = 0 if q4 is None else int(q4.n_lesions)
        q1_count = f"{n_q1} common Q1 lesions"
        q1_reason = f"too few common Q1 lesions ({n_q1} < {min_lesions})" if not q1_ok else ""

        # 2. Q1 separation
        crit = (
            f"common-Q1 relative spread of HD95 or ASD >= {_fmt(min_spread)}% and >= {_fmt(ratio)} x its "
            f"all-cases relative spread, its best-vs-worst pair with bootstrap sign share >= {_fmt(min_share)}"
        )
        if q1_ok:
            obs = "; ".join(
                f"{m.upper()} {_fmt(q1[f'{m}_spread_pct'])}% on common Q1 vs "
                f"{_fmt(overall[f'{m}_spread_pct'])}% over all cases"
                for m in ("hd95", "asd")
            )
            met = [
                m
                for m in ("hd95", "asd")
                if q1[f"{m}_spread_pct"] >= min_spread and q1[f"{m}_spread_pct"] >= ratio * overall[f"{m}_spread_pct"]
            ]
            if not met:
                verdict, reason = "not_supported", "neither HD95 nor ASD meets the criterion"
            else:
                shares = {m: _extreme_pair_share(stratified, robustness, dataset, models, m) for m in met}
                obs += "; " + ", ".join(f"{m.upper()} best-vs-worst sign share {_fmt(s)}" for m, s in shares.items())
                if any(s >= min_share for s in shares.values()):
                    verdict, reason = "supported", ""
                else:
                    verdict, reason = "inconclusive", "the Q1 separation is not robust under case resampling"
        else:
            obs, verdict, reason = q1_count, "inconclusive", q1_reason
        results["q1_boundary_separation"] = (COMMON, verdict, crit, obs, reason)

        # 3. ranking change
        crit = (
            "on common Q1 lesions the top models' order under HD95, ASD or contour F1 differs from their "
            f"overall-Dice order, with a reversed pair of bootstrap sign share >= {_fmt(min_share)}"
        )
        if q1_ok:
            changed = [m for m in BOUNDARY if str(q1[f"{m}_agrees_with_dice"]) != "True"]
            obs = (
                f"order differs under {', '.join(changed) if changed else 'no boundary metric'}; Dice leader "
                f"ranks {int(q1.dice_leader_hd95_rank)} under HD95"
            )
            if not changed:
                verdict, reason = "not_supported", "every boundary metric orders the top models as Dice does"
            else:
                b = robustness[
                    (robustness.dataset == dataset)
                    & (robustness.lesion_set == COMMON)
                    & (robustness.stratum == "Q1")
                    & robustness.metric.isin(changed)
                    & robustness.pair_first.isin(models)
                    & robustness.pair_second.isin(models)
                    & (robustness.better_model == robustness.pair_second)
                ]
                best = float(b["sign_share"].max()) if len(b) else float("nan")
                obs += f"; {len(b)} reversed pair(s), best sign share {_fmt(best) if len(b) else 'n/a'}"
                if len(b) and best >= min_share:
                    verdict, reason = "supported", ""
                else:
                    verdict = "inconclusive"
                    reason = "the reversal is not robust under case resampling" + (
                        " and one seed only: seed noise unmeasured" if n_seeds == 1 else ""
                    )
        else:
            obs, verdict, reason = q1_count, "inconclusive", q1_reason
        results["ranking_change"] = (COMMON, verdict, crit, obs, reason)

        # 4. strongest in the smallest quartile
        crit = "mean of the HD95 and ASD relative spreads of the top models on common lesions is largest in Q1"
        dis, counts = _quartile_disagreement(stratified, dataset, models)
        obs = ", ".join(f"{q} {_fmt(v)}% ({counts[q]} lesions)" for q, v in dis.items())
        few = [q for q in QUARTILES if counts[q] < min_lesions]
        if not q1_ok:
            verdict, reason = "inconclusive", q1_reason
        elif few or any(np.isnan(v) for v in dis.values()):
            verdict, reason = "inconclusive", f"too few common lesions in {', '.join(few)} (< {min_lesions})"
        else:
            strongest = max(dis, key=lambda q: (dis[q], q == "Q1"))
            verdict = "supported" if strongest == "Q1" else "not_supported"
            reason = "" if verdict == "supported" else f"disagreement is strongest in {strongest}"
        separation = results["q1_boundary_separation"][1]
        if verdict == "supported" and separation != "supported":
            verdict = "inconclusive"
            reason = f"no established Q1 separation to compare (q1_boundary_separation is {separation})"
        results["smallest_quartile_strongest"] = (COMMON, verdict, crit, obs, reason)

        # 5. larger lesions align better
        crit = (
            "mean Kendall tau between the top models' overall-Dice order and their HD95/ASD/contour-F1 "
            "orders on common lesions is higher in Q4 than in Q1"
        )
        q4_ok = q4 is not None and int(q4.n_lesions) >= min_lesions and not pd.isna(q4.dice_spread)
        if q1_ok and q4_ok:
            obs = f"tau Q4 {_fmt(q4.mean_kendall_tau)}, Q1 {_fmt(q1.mean_kendall_tau)}"
            better = float(q4.mean_kendall_tau) > float(q1.mean_kendall_tau)
            verdict, reason = ("supported", "") if better else ("not_supported", "Q4 does not align better than Q1")
        else:
            obs = f"{n_q1} common Q1, {n_q4} common Q4 lesions"
            verdict = "inconclusive"
            reason = q1_reason or f"too few common Q4 lesions ({n_q4} < {min_lesions})"
        change = results["ranking_change"][1]
        if verdict == "supported" and change != "supported":
            verdict = "inconclusive"
            reason = f"no established Q1 reordering to compare (ranking_change is {change})"
        results["large_lesions_align"] = (COMMON, verdict, crit, obs, reason)

        for finding, (lesion_set, verdict, crit, obs, reason) in results.items():
            failed, warned = _failed_checks(sanity, dataset, finding)
            reasons = [reason] if reason else []
            if failed and verdict != "inconclusive":
                reasons.insert(0, f"failed sanity check(s): {', '.join(failed)} (verdict would be {verdict})")
                verdict = "inconclusive"
            elif failed:
                reasons.append(f"failed sanity check(s): {', '.join(failed)}")
            if finding in ("q1_boundary_separation", "ranking_change") and not tied and verdict != "inconclusive":
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
                    "models": scope,
                    "depends_on": ";".join(DEPENDS_ON[finding]),
                }
            )
    out = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    out["finding_order"] = out["finding"].map(list(FINDINGS).index)
    return sort_rows(out, ["dataset", "finding_order"]).drop(columns="finding_order")
