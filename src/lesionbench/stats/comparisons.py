"""Model comparisons as evaluation practice reports them: paired Wilcoxon tests with Holm correction, three
ranking schemes, and rank stability under the paired case bootstrap (docs/results.md).

One pass per data set (and ``pooled``) over its per-case sums (``strata.CaseSums``), for the lesion sets whose
lesions are the same for every model (``all`` and ``common``: paired comparisons):

- ``pairwise_tests.csv`` (``paired_tests``): every model pair x lesion set x stratum x metric;
  Holm families are the pairs and metrics of one data set, lesion set and stratum;
- ``ranking_schemes.csv`` (``schemes``): aggregate-then-rank, rank-then-aggregate, test-then-rank;
- ``ranking_stability.csv`` (``stability``): share of resamples in which each model holds each rank.

Resamples: a data set's weight matrix is the bootstrap's (``bootstrap.weight_matrix`` with
``bootstrap.dataset_rng``: the same resamples as the overall CIs and the robustness table). The pooled data set
is resampled stratified by data set: its weights are the data sets' own weight matrices side by side, so each
resample keeps every data set's case count.

Every row carries ``n_lesions`` (the set's lesions in the stratum), ``insufficient_lesions`` (a lesion-level row
with fewer than ``claim.min_lesions``), and the size bins: ``size_bins`` (the edge rule of
``stratification.edges``; ``mixed`` for pooled data sets with different rules), ``size_low`` and ``size_high``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .aggregate import DEFAULT_MIN_LESIONS, is_lesion_level
from .bootstrap import dice_order, ratio_statistics, resampled_datasets
from .paired_tests import TEST_COLUMNS, holm_families, pairwise_tests
from .schemes import SCHEME_COLUMNS, scheme_rows
from .stability import STABILITY_COLUMNS, stability_rows
from .strata import KEYS, PAIRED_SETS, CaseSums, key_indices, point_statistics, seed_average
from .tables import HIGHER_IS_BETTER, StudyTableError, sort_rows

log = logging.getLogger("lesionbench")

FAMILY_COLUMNS = ("dataset", "lesion_set", "stratum")
STRATUM_COLUMNS = ["n_lesions", "insufficient_lesions", "size_bins", "size_low", "size_high"]
PAIRWISE_COLUMNS = (
    TEST_COLUMNS
    + ["ci_level", "n_resamples", "p_holm", "significant", "alpha", "family", "family_size"]
    + STRATUM_COLUMNS
)
SCHEMES_COLUMNS = SCHEME_COLUMNS + ["alpha"] + STRATUM_COLUMNS
RANK_STABILITY_COLUMNS = STABILITY_COLUMNS + STRATUM_COLUMNS
DEFAULT_ALPHA = 0.05  # tests and library callers only; the workflow passes statistics.test_alpha (schema)


@dataclass
class Comparisons:
    pairwise: pd.DataFrame
    schemes: pd.DataFrame
    stability: pd.DataFrame


def _stratum_info(sums: CaseSums, keys, min_lesions: int) -> dict:
    info = {}
    for lesion_set, stratum, metric in keys:
        n = sums.n_lesions(stratum, lesion_set)
        info[(lesion_set, stratum, metric)] = {
            "n_lesions": n,
            "insufficient_lesions": bool(is_lesion_level(stratum, metric) and n < min_lesions),
            "size_bins": sums.edge_rule,
            "size_low": float(sums.edges[stratum][0]),
            "size_high": float(sums.edges[stratum][1]),
        }
    return info


def compare_dataset(
    sums: CaseSums, weights: np.ndarray, confidence: float, alpha: float, min_lesions: int = DEFAULT_MIN_LESIONS
) -> Comparisons:
    """The three comparison tables of one data set from its per-case sums and resampling weights (B, cases)."""
    paired = key_indices(PAIRED_SETS)
    keys = [KEYS[k] for k in paired]
    num, den = sums.num[..., paired], sums.den[..., paired]
    models = list(sums.models)
    observed_all = seed_average(point_statistics(sums.num, sums.den), seed_axis=1)
    order = dice_order(observed_all, models)
    observed = observed_all[:, paired]
    pairs = [(order[i], order[j]) for i in range(len(order)) for j in range(i + 1, len(order))]
    info = _stratum_info(sums, keys, min_lesions)

    # per-case values: denominators of a paired set are the same for every model and seed
    case_num, case_den = num.mean(axis=1), den[0, 0]
    tests = pairwise_tests(sums.dataset, models, keys, case_num, case_den, weights, confidence, HIGHER_IS_BETTER, pairs)
    tests = holm_families(tests, FAMILY_COLUMNS, alpha)
    tests["ci_level"] = float(confidence)
    tests["n_resamples"] = int(weights.shape[0])

    scheme_list: list[dict] = []
    with np.errstate(invalid="ignore", divide="ignore"):
        values = case_num / case_den[None]
    grouped = {key: g for key, g in tests.groupby(["lesion_set", "stratum", "metric"], sort=False)}
    for k, (lesion_set, stratum, metric) in enumerate(keys):
        inc = case_den[:, k] > 0
        if not inc.any() or np.isnan(observed[:, k]).any():
            continue  # no lesion of the set in the stratum: nothing to rank
        cell = grouped.get((lesion_set, stratum, metric), tests.iloc[:0])
        aggregate = {m: observed[i, k] for i, m in enumerate(models)}
        scheme_list += scheme_rows(
            sums.dataset,
            lesion_set,
            stratum,
            metric,
            HIGHER_IS_BETTER[metric],
            aggregate,
            values[:, inc, k],
            models,
            cell,
        )
    scheme = pd.DataFrame(scheme_list, columns=SCHEME_COLUMNS)
    scheme["alpha"] = float(alpha)

    return Comparisons(
        _with_info(tests, info, PAIRWISE_COLUMNS),
        _with_info(scheme, info, SCHEMES_COLUMNS),
        stability_table(sums, weights, min_lesions),
    )


def _with_info(df: pd.DataFrame, info: dict, columns) -> pd.DataFrame:
    extra = pd.DataFrame(
        [info[key] for key in zip(df["lesion_set"], df["stratum"], df["metric"])],
        columns=STRATUM_COLUMNS,
        index=df.index,
    )
    return pd.concat([df, extra], axis=1)[columns]


def stability_table(sums: CaseSums, weights: np.ndarray, min_lesions: int = DEFAULT_MIN_LESIONS) -> pd.DataFrame:
    """Rank shares of one data set: every model, rank and paired key from two matrix products over the
    weights (``bootstrap.ratio_statistics``), no loop per resample."""
    paired = key_indices(PAIRED_SETS)
    keys = [KEYS[k] for k in paired]
    num, den = sums.num[..., paired], sums.den[..., paired]
    observed = seed_average(point_statistics(num, den), seed_axis=1)
    samples = ratio_statistics(num, den, weights)  # (B, M, K)
    stab = stability_rows(sums.dataset, list(sums.models), keys, observed, samples, HIGHER_IS_BETTER)
    return _with_info(stab, _stratum_info(sums, keys, min_lesions), RANK_STABILITY_COLUMNS)


def rank_stability(
    sums_by_dataset: dict,
    resamples: int,
    bootstrap_seed: int,
    min_lesions: int = DEFAULT_MIN_LESIONS,
    pooled: bool = True,
) -> pd.DataFrame:
    """``ranking_stability.csv`` alone (the benchmark's workload; ``model_comparisons`` writes the same rows)."""
    frames = [
        stability_table(s, w, min_lesions)
        for s, w in resampled_datasets(sums_by_dataset, resamples, bootstrap_seed, pooled)
    ]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RANK_STABILITY_COLUMNS)
    return sort_rows(out, ["dataset", "lesion_set", "stratum", "metric", "model", "rank"])


def model_comparisons(
    sums_by_dataset: dict,
    resamples: int,
    bootstrap_seed: int,
    confidence: float,
    alpha: float = DEFAULT_ALPHA,
    min_lesions: int = DEFAULT_MIN_LESIONS,
    pooled: bool = True,
) -> Comparisons:
    """The three comparison tables over every data set and (with ``pooled``) all data sets pooled."""
    parts = [
        compare_dataset(s, w, confidence, alpha, min_lesions)
        for s, w in resampled_datasets(sums_by_dataset, resamples, bootstrap_seed, pooled)
    ]

    def stack(attr: str, columns, keys) -> pd.DataFrame:
        frames = [getattr(p, attr) for p in parts if len(getattr(p, attr))]
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
        return sort_rows(out, keys)

    return Comparisons(
        stack(
            "pairwise", PAIRWISE_COLUMNS, ["dataset", "lesion_set", "stratum", "metric", "pair_first", "pair_second"]
        ),
        stack("schemes", SCHEMES_COLUMNS, ["dataset", "lesion_set", "stratum", "metric", "rank_aggregate_then_rank"]),
        stack("stability", RANK_STABILITY_COLUMNS, ["dataset", "lesion_set", "stratum", "metric", "model", "rank"]),
    )


def test_alpha(statistics: dict) -> float:
    """``statistics.test_alpha``: the level a Holm-adjusted p-value must fall below to count as significant."""
    try:
        return float(statistics["test_alpha"])
    except KeyError:
        raise StudyTableError("config statistics block lacks 'test_alpha'") from None


def write_comparisons(
    inputs, pairwise_output, schemes_output, stability_output, statistics: dict, claim: dict
) -> Comparisons:
    """Rule model_comparisons: the three comparison tables from the study inputs (``pipeline.StudyInputs``)."""
    from .pipeline import load_sums, min_lesions, statistics_settings, write_table

    resamples, seed, confidence = statistics_settings(statistics)
    out = model_comparisons(load_sums(inputs), resamples, seed, confidence, test_alpha(statistics), min_lesions(claim))
    write_table(out.pairwise, pairwise_output)
    write_table(out.schemes, schemes_output)
    write_table(out.stability, stability_output)
    return out
