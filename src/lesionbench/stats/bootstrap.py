"""Paired case bootstrap, vectorized with a resampling weight matrix.

A resample draws the test cases of a data set with replacement; it is stored as one row of multinomial
counts ``W[b, c]`` (how often case c is drawn). Every statistic is a ratio of per-case sums
(see ``strata``), so all resamples of all models, strata and metrics are two matrix products:
``(W @ num) / (W @ den)``, computed per model and seed and then averaged over seeds. Lesions travel with
their case: a case drawn twice counts its lesions twice. The same W serves every model, which makes model
differences paired; the pairwise table covers the lesion sets whose lesions are the same for every model
(``all`` and ``common``). No Python loop runs per resample.

Random numbers: one weight matrix per data set from ``numpy.random.default_rng`` seeded with
``SeedSequence([bootstrap_seed, crc32(dataset)])``, so a data set's resamples do not depend on which other
data sets are configured, and the overall-metric CIs and the pairwise robustness use the same resamples.
The pooled data set (all data sets as one) is resampled stratified by data set: its weight matrix is the
data sets' matrices side by side, so each resample draws every data set's cases from that data set.

CIs are percentile intervals (numpy linear quantiles at (1-confidence)/2 and 1-(1-confidence)/2). A
resample in which a stratum holds no lesion has no value for that stratum; it is left out of that cell's
CI and sign share (``n_valid_resamples`` says how many remained).
"""

from __future__ import annotations

import logging
import zlib

import numpy as np
import pandas as pd

from .aggregate import DEFAULT_MIN_LESIONS, is_lesion_level
from .ranking import order_models
from .strata import ALL, KEY_INDEX, KEYS, PAIRED_SETS, CaseSums, key_indices, point_statistics, pool, seed_average
from .tables import CASE_METRICS, HIGHER_IS_BETTER, QUARTILES, DatasetTables, sort_rows

log = logging.getLogger("lesionbench")

# Differences within ZERO_TOLERANCE * (1 + largest |model value|) of zero count as zero (sign 0): identical
# models then give exactly observed 0 and a sign share of 1.0 whatever the floating-point summation order.
ZERO_TOLERANCE = 1e-9


def dataset_rng(bootstrap_seed: int, dataset: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(bootstrap_seed), zlib.crc32(dataset.encode())]))


def weight_matrix(n_cases: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n_cases) multinomial counts: row b says how often each case is drawn in resample b."""
    if n_cases < 1 or resamples < 1:
        raise ValueError(f"bootstrap needs at least one case and one resample (got {n_cases}, {resamples})")
    return rng.multinomial(n_cases, np.full(n_cases, 1.0 / n_cases), size=resamples).astype(np.float64)


def ratio_statistics(num: np.ndarray, den: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted ratio statistics, averaged over seeds.

    num, den: (n_models, n_seeds, n_cases, n_keys) per-case sums; weights: (B, n_cases).
    Returns (B, n_models, n_keys): per seed ``(W @ num) / (W @ den)``, then the mean over the seeds where it
    is defined (``strata.seed_average``); NaN where no seed's resampled denominator is positive.
    """
    m, s, c, k = num.shape
    top = weights @ np.moveaxis(num, 2, 0).reshape(c, m * s * k)
    bottom = weights @ np.moveaxis(np.broadcast_to(den, num.shape), 2, 0).reshape(c, m * s * k)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_seed = top / bottom
    per_seed[bottom == 0] = np.nan
    return seed_average(per_seed.reshape(-1, m, s, k), seed_axis=2)


def percentile_ci(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile interval over axis 0, ignoring NaN resamples. Returns (low, high, n_valid)."""
    alpha = (1.0 - confidence) / 2.0
    flat = samples.reshape(samples.shape[0], -1)
    valid = ~np.isnan(flat)
    n_valid = valid.sum(axis=0)
    low = np.full(flat.shape[1], np.nan)
    high = np.full(flat.shape[1], np.nan)
    full = n_valid == flat.shape[0]
    if full.any():
        q = np.quantile(flat[:, full], [alpha, 1.0 - alpha], axis=0)
        low[full], high[full] = q[0], q[1]
    for j in np.flatnonzero(~full & (n_valid > 0)):  # only strata that some resamples miss
        low[j], high[j] = np.quantile(flat[valid[:, j], j], [alpha, 1.0 - alpha])
    shape = samples.shape[1:]
    return low.reshape(shape), high.reshape(shape), n_valid.reshape(shape)


def _signs(x: np.ndarray, tol: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) <= tol, 0, np.sign(x))


def case_weights(sums: CaseSums, resamples: int, bootstrap_seed: int) -> np.ndarray:
    """The (resamples, n_cases) weight matrix of one data set (its own random stream, ``dataset_rng``)."""
    return weight_matrix(sums.n_cases, resamples, dataset_rng(bootstrap_seed, sums.dataset))


def resampled_datasets(sums_by_dataset: dict, resamples: int, bootstrap_seed: int, pooled: bool = True):
    """(sums, weights) of every data set and, with ``pooled`` and more than one data set, of all data sets
    pooled (their weight matrices side by side: resampling stratified by data set). One data set has no
    pooled entry: it would only repeat that data set."""
    names = sorted(sums_by_dataset)
    weights = {d: case_weights(sums_by_dataset[d], resamples, bootstrap_seed) for d in names}
    out = [(sums_by_dataset[d], weights[d]) for d in names]
    if pooled and len(names) > 1:
        out.append((pool([sums_by_dataset[d] for d in names]), np.concatenate([weights[d] for d in names], axis=1)))
    return out


def resample_dataset(sums: CaseSums, weights: np.ndarray, keys=None):
    """(observed (n_models, n_keys), resampled (B, n_models, n_keys)) of one data set, seeds averaged, under
    the (B, n_cases) ``weights``. ``keys``: indices into ``KEYS`` to compute (default all); the outputs'
    last axis follows them. The weights do not depend on ``keys``, so every subset sees the same resamples."""
    num, den = (sums.num, sums.den) if keys is None else (sums.num[..., keys], sums.den[..., keys])
    observed = seed_average(point_statistics(num, den), seed_axis=1)
    return observed, ratio_statistics(num, den, weights)


def dice_order(observed: np.ndarray, models) -> list[str]:
    """Models best first by overall Dice; ``observed``: (n_models, n_keys) over every key of ``KEYS``."""
    col = KEY_INDEX[(ALL, "overall", "dice")]
    return order_models({m: observed[i, col] for i, m in enumerate(models)}, "dice")


ROBUSTNESS_COLUMNS = [
    "dataset",
    "lesion_set",
    "stratum",
    "metric",
    "higher_is_better",
    "pair_first",
    "pair_second",
    "top_k_pair",
    "dice_rank_a",
    "dice_rank_b",
    "value_a",
    "value_b",
    "difference",
    "better_model",
    "sign_share",
    "ci_low",
    "ci_high",
    "ci_excludes_zero",
    "n_lesions",
    "insufficient_lesions",
    "n_valid_resamples",
    "n_resamples",
    "ci_level",
    "size_bins",
    "size_low",
    "size_high",
]


def pairwise_robustness(
    sums: CaseSums,
    weights: np.ndarray,
    confidence: float,
    top_k: int,
    min_lesions: int = DEFAULT_MIN_LESIONS,
) -> pd.DataFrame:
    """Every model pair x lesion set (``all``, ``common``) x stratum x metric of one data set: observed
    difference (pair_first - pair_second, pair_first ranked higher by overall Dice), the share of resamples whose
    difference has the observed sign, and the percentile CI of the difference. ``n_lesions`` is the count of
    the set's lesions in the stratum (flagged below ``min_lesions``, lesion-level rows only). ``weights``:
    the (B, n_cases) resampling matrix (``case_weights``, or stratified for the pooled data set)."""
    paired = key_indices(PAIRED_SETS)  # `detected` differs by model: not a paired comparison
    keys = [KEYS[k] for k in paired]
    resamples = weights.shape[0]
    observed, samples = resample_dataset(sums, weights, paired)
    models = list(sums.models)
    dice = keys.index((ALL, "overall", "dice"))
    order = order_models({m: observed[i, dice] for i, m in enumerate(models)}, "dice")
    rank = {m: i + 1 for i, m in enumerate(order)}
    pairs = [(order[i], order[j]) for i in range(len(order)) for j in range(i + 1, len(order))]
    if not pairs:
        return pd.DataFrame(columns=ROBUSTNESS_COLUMNS)
    ia = np.array([models.index(a) for a, _ in pairs])
    ib = np.array([models.index(b) for _, b in pairs])
    diffs = samples[:, ia, :] - samples[:, ib, :]  # (B, P, K)
    obs = observed[ia, :] - observed[ib, :]  # (P, K)
    tol = ZERO_TOLERANCE * (1.0 + np.nanmax(np.abs(observed), axis=0, initial=0.0))  # (K,)
    low, high, n_valid = percentile_ci(diffs, confidence)
    same = (_signs(diffs, tol) == _signs(obs, tol)[None]) & ~np.isnan(diffs)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = same.sum(axis=0) / n_valid
    rows = []
    for p, (a, b) in enumerate(pairs):
        for k, (lesion_set, stratum, metric) in enumerate(keys):
            if np.isnan(obs[p, k]):
                continue  # no lesion of the set in the stratum: undefined (the stratified table flags it)
            if n_valid[p, k] == 0:
                log.warning(
                    "%s %s %s %s %s-%s: no resample holds a lesion of the stratum; row left out",
                    sums.dataset,
                    lesion_set,
                    stratum,
                    metric,
                    a,
                    b,
                )
                continue
            n_les = sums.n_lesions(stratum, lesion_set)
            d = 0.0 if abs(obs[p, k]) <= tol[k] else float(obs[p, k])
            better = "tie" if d == 0.0 else (a if (d > 0) == HIGHER_IS_BETTER[metric] else b)
            rows.append(
                {
                    "dataset": sums.dataset,
                    "lesion_set": lesion_set,
                    "stratum": stratum,
                    "metric": metric,
                    "higher_is_better": HIGHER_IS_BETTER[metric],
                    "pair_first": a,
                    "pair_second": b,
                    "top_k_pair": rank[a] <= top_k and rank[b] <= top_k,
                    "dice_rank_a": rank[a],
                    "dice_rank_b": rank[b],
                    "value_a": float(observed[models.index(a), k]),
                    "value_b": float(observed[models.index(b), k]),
                    "difference": d,
                    "better_model": better,
                    "sign_share": float(share[p, k]),
                    "ci_low": float(low[p, k]),
                    "ci_high": float(high[p, k]),
                    "ci_excludes_zero": bool(low[p, k] > 0 or high[p, k] < 0),
                    "n_lesions": n_les,
                    "insufficient_lesions": bool(is_lesion_level(stratum, metric) and n_les < min_lesions),
                    "n_valid_resamples": int(n_valid[p, k]),
                    "n_resamples": int(resamples),
                    "ci_level": confidence,
                    "size_bins": sums.edge_rule,
                    "size_low": float(sums.edges[stratum][0]),
                    "size_high": float(sums.edges[stratum][1]),
                }
            )
    return pd.DataFrame(rows, columns=ROBUSTNESS_COLUMNS)


def directional_robustness(
    sums_by_dataset: dict,
    resamples: int,
    bootstrap_seed: int,
    confidence: float,
    top_k: int,
    min_lesions: int = DEFAULT_MIN_LESIONS,
) -> pd.DataFrame:
    """``bootstrap_directional_robustness.csv``: ``pairwise_robustness`` of every data set and of all data
    sets pooled (stratified resampling), so a pooled verdict is held to the same sign-share test."""
    frames = [
        pairwise_robustness(s, w, confidence, top_k, min_lesions)
        for s, w in resampled_datasets(sums_by_dataset, resamples, bootstrap_seed)
    ]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ROBUSTNESS_COLUMNS)
    return sort_rows(out, ["dataset", "lesion_set", "stratum", "metric", "dice_rank_a", "dice_rank_b"])


def naive_bootstrap(tables: DatasetTables, weights: np.ndarray) -> np.ndarray:
    """Reference implementation for tests and the benchmark: one Python iteration per resample, each
    rebuilding the resampled case list and its lesion rows and averaging them directly, for every lesion set
    (``common`` recomputed from the detection flags of every model and seed).

    Returns (B, n_models, n_keys) like ``ratio_statistics`` on the same weights (seeds averaged over the seeds
    where a value is defined).
    """
    from .strata import assign_quartile

    e = tables.edges
    cases = list(tables.test_cases)
    ref_size = dict(zip(zip(tables.reference.case_id, tables.reference.lesion_id), tables.reference.size_fraction))
    pl_ref = tables.per_lesion[tables.per_lesion.kind == "reference"]
    n_runs = len(tables.models) * len(tables.seeds)
    hits = pl_ref.groupby(["case_id", "lesion_id"])["detected"].sum()
    common = {p for p, h in hits.items() if h == n_runs}
    per_model = []  # [model][seed] -> (case_values dict, ref lesions by case, fp by case)
    for model in tables.models:
        seeds = []
        for seed in tables.seeds:
            pc = tables.per_case[(tables.per_case.model == model) & (tables.per_case.seed == seed)]
            pl = tables.per_lesion[(tables.per_lesion.model == model) & (tables.per_lesion.seed == seed)]
            case_rows = {c: row for c, row in zip(pc.case_id, pc[list(CASE_METRICS)].to_numpy(float))}
            lesions: dict[str, list] = {c: [] for c in cases}
            fps: dict[str, list] = {c: [] for c in cases}
            for row in pl.itertuples():
                case = str(row.case_id)
                if row.kind == "reference":
                    q = int(assign_quartile([ref_size[(row.case_id, row.lesion_id)]], e["q25"], e["q50"], e["q75"])[0])
                    lesions[case].append(
                        (
                            q,
                            bool(row.detected),
                            (row.case_id, row.lesion_id) in common,
                            [getattr(row, m) for m in CASE_METRICS],
                        )
                    )
                else:
                    fps[case].append(int(assign_quartile([row.size_fraction], e["q25"], e["q50"], e["q75"])[0]))
            seeds.append((case_rows, lesions, fps))
        per_model.append(seeds)

    def mean(values):
        return np.mean(values) if values else np.nan

    out = np.full((weights.shape[0], len(tables.models), len(KEYS)), np.nan)
    for b in range(weights.shape[0]):
        drawn = [cases[i] for i in np.repeat(np.arange(len(cases)), weights[b].astype(int))]
        for mi, seeds in enumerate(per_model):
            acc = np.full((len(seeds), len(KEYS)), np.nan)
            for si, (case_rows, lesions, fps) in enumerate(seeds):
                values = {}
                case_matrix = np.array([case_rows[c] for c in drawn])
                for j, metric in enumerate(CASE_METRICS):
                    values[(ALL, "overall", metric)] = case_matrix[:, j].mean()
                rows = [les for c in drawn for les in lesions[c]]
                values[(ALL, "overall", "lesion_recall")] = mean([float(r[1]) for r in rows])
                values[(ALL, "overall", "fp_per_case")] = sum(len(fps[c]) for c in drawn) / len(drawn)
                for q, stratum in enumerate(QUARTILES):
                    rq = [r for r in rows if r[0] == q]
                    members = {ALL: rq, "detected": [r for r in rq if r[1]], "common": [r for r in rq if r[2]]}
                    for lesion_set, chosen in members.items():
                        for j, metric in enumerate(CASE_METRICS):
                            values[(lesion_set, stratum, metric)] = mean([r[3][j] for r in chosen])
                    values[(ALL, stratum, "lesion_recall")] = mean([float(r[1]) for r in rq])
                    values[(ALL, stratum, "fp_per_case")] = sum(f == q for c in drawn for f in fps[c]) / len(drawn)
                acc[si] = [values[key] for key in KEYS]
            defined = ~np.isnan(acc)
            if defined.any():
                with np.errstate(invalid="ignore"):
                    out[b, mi] = np.where(defined.any(axis=0), np.nansum(acc, axis=0) / defined.sum(axis=0), np.nan)
    return out
