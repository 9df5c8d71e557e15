"""Paired case bootstrap, vectorized with a resampling weight matrix.

A resample draws the test cases of a data set with replacement; it is stored as one row of multinomial
counts ``W[b, c]`` (how often case c is drawn). Every statistic is a ratio of per-case sums
(see ``strata``), so all resamples of all models, strata and metrics are two matrix products:
``(W @ num) / (W @ den)``. Lesions travel with their case: a case drawn twice counts its lesions twice. The
same W serves every model, which makes model differences paired. No Python loop runs per resample.

Random numbers: one weight matrix per data set from ``numpy.random.default_rng`` seeded with
``SeedSequence([bootstrap_seed, crc32(dataset)])``, so a data set's resamples do not depend on which other
data sets are configured, and the overall-metric CIs and the pairwise robustness use the same resamples.

CIs are percentile intervals (numpy linear quantiles at (1-confidence)/2 and 1-(1-confidence)/2). A
resample in which a stratum holds no lesion has no value for that stratum; it is left out of that cell's
CI and sign share (``n_valid_resamples`` says how many remained).
"""

from __future__ import annotations

import logging
import zlib

import numpy as np
import pandas as pd

from .ranking import order_models
from .strata import KEY_INDEX, KEYS, CaseSums, point_statistics
from .tables import HIGHER_IS_BETTER, METRICS, STRATA, DatasetTables, sort_rows

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
    """Weighted ratio statistics.

    num: (n_models, n_cases, n_keys); den: (n_cases, n_keys); weights: (B, n_cases).
    Returns (B, n_models, n_keys); NaN where a resample's denominator is 0.
    """
    m, c, k = num.shape
    top = weights @ num.transpose(1, 0, 2).reshape(c, m * k)
    bottom = weights @ den
    with np.errstate(invalid="ignore", divide="ignore"):
        out = top.reshape(-1, m, k) / bottom[:, None, :]
    out[np.broadcast_to(bottom[:, None, :] == 0, out.shape)] = np.nan
    return out


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


def resample_dataset(sums: CaseSums, resamples: int, bootstrap_seed: int):
    """(observed (n_models, n_keys), resampled (B, n_models, n_keys)) of one data set, seeds averaged."""
    num = sums.seed_mean()
    weights = weight_matrix(sums.n_cases, resamples, dataset_rng(bootstrap_seed, sums.dataset))
    return point_statistics(num, sums.den), ratio_statistics(num, sums.den, weights)


def dice_order(observed: np.ndarray, models) -> list[str]:
    col = KEY_INDEX[("overall", "dice")]
    return order_models({m: observed[i, col] for i, m in enumerate(models)}, "dice")


ROBUSTNESS_COLUMNS = ["dataset", "stratum", "metric", "higher_is_better", "model_a", "model_b", "top_k_pair",
                      "dice_rank_a", "dice_rank_b", "value_a", "value_b", "difference", "better_model",
                      "sign_share", "ci_low", "ci_high", "ci_excludes_zero", "n_valid_resamples", "n_resamples",
                      "ci_level"]


def pairwise_robustness(sums: CaseSums, resamples: int, bootstrap_seed: int, confidence: float,
                        top_k: int) -> pd.DataFrame:
    """Every model pair x stratum x metric of one data set: observed difference (model_a - model_b, model_a
    ranked higher by overall Dice), the share of resamples whose difference has the observed sign, and
    the percentile CI of the difference."""
    observed, samples = resample_dataset(sums, resamples, bootstrap_seed)
    models = list(sums.models)
    order = dice_order(observed, models)
    rank = {m: i + 1 for i, m in enumerate(order)}
    pairs = [(order[i], order[j]) for i in range(len(order)) for j in range(i + 1, len(order))]
    if not pairs:
        return pd.DataFrame(columns=ROBUSTNESS_COLUMNS)
    ia = np.array([models.index(a) for a, _ in pairs])
    ib = np.array([models.index(b) for _, b in pairs])
    diffs = samples[:, ia, :] - samples[:, ib, :]                      # (B, P, K)
    obs = observed[ia, :] - observed[ib, :]                            # (P, K)
    tol = ZERO_TOLERANCE * (1.0 + np.nanmax(np.abs(observed), axis=0, initial=0.0))  # (K,)
    low, high, n_valid = percentile_ci(diffs, confidence)
    same = (_signs(diffs, tol) == _signs(obs, tol)[None]) & ~np.isnan(diffs)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = same.sum(axis=0) / n_valid
    rows = []
    for p, (a, b) in enumerate(pairs):
        for k, (stratum, metric) in enumerate(KEYS):
            if np.isnan(obs[p, k]):
                continue  # stratum without reference lesions: undefined, not written
            if n_valid[p, k] == 0:
                log.warning("%s %s %s %s-%s: no resample holds a lesion of the stratum; row left out",
                            sums.dataset, stratum, metric, a, b)
                continue
            d = 0.0 if abs(obs[p, k]) <= tol[k] else float(obs[p, k])
            better = "tie" if d == 0.0 else (a if (d > 0) == HIGHER_IS_BETTER[metric] else b)
            rows.append({
                "dataset": sums.dataset, "stratum": stratum, "metric": metric,
                "higher_is_better": HIGHER_IS_BETTER[metric], "model_a": a, "model_b": b,
                "top_k_pair": rank[a] <= top_k and rank[b] <= top_k, "dice_rank_a": rank[a],
                "dice_rank_b": rank[b], "value_a": float(observed[models.index(a), k]),
                "value_b": float(observed[models.index(b), k]), "difference": d,
                "better_model": better, "sign_share": float(share[p, k]),
                "ci_low": float(low[p, k]), "ci_high": float(high[p, k]),
                "ci_excludes_zero": bool(low[p, k] > 0 or high[p, k] < 0),
                "n_valid_resamples": int(n_valid[p, k]), "n_resamples": int(resamples), "ci_level": confidence,
            })
    return pd.DataFrame(rows, columns=ROBUSTNESS_COLUMNS)


def directional_robustness(sums_by_dataset: dict, resamples: int, bootstrap_seed: int, confidence: float,
                           top_k: int) -> pd.DataFrame:
    frames = [pairwise_robustness(s, resamples, bootstrap_seed, confidence, top_k)
              for _, s in sorted(sums_by_dataset.items())]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ROBUSTNESS_COLUMNS)
    return sort_rows(out, ["dataset", "stratum", "metric", "dice_rank_a", "dice_rank_b"])


def naive_bootstrap(tables: DatasetTables, weights: np.ndarray) -> np.ndarray:
    """Reference implementation for tests and the benchmark: one Python iteration per resample, each
    rebuilding the resampled case list and its lesion rows and averaging them directly.

    Returns (B, n_models, n_keys) like ``ratio_statistics`` on the same weights (seeds averaged).
    """
    from .strata import assign_quartile

    e = tables.edges
    cases = list(tables.test_cases)
    ref_size = dict(zip(zip(tables.reference.case_id, tables.reference.lesion_id), tables.reference.size_fraction))
    per_model = []  # [model][seed] -> (case_values dict, ref lesions by case, fp by case)
    for model in tables.models:
        seeds = []
        for seed in tables.seeds:
            pc = tables.per_case[(tables.per_case.model == model) & (tables.per_case.seed == seed)]
            pl = tables.per_lesion[(tables.per_lesion.model == model) & (tables.per_lesion.seed == seed)]
            case_rows = {c: row for c, row in zip(pc.case_id, pc[list(METRICS[:6])].to_numpy(float))}
            lesions = {c: [] for c in cases}
            fps = {c: [] for c in cases}
            for row in pl.itertuples():
                if row.kind == "reference":
                    q = int(assign_quartile([ref_size[(row.case_id, row.lesion_id)]], e["q25"], e["q50"], e["q75"])[0])
                    lesions[row.case_id].append((q, float(row.detected), [getattr(row, m) for m in METRICS[:6]]))
                else:
                    fps[row.case_id].append(int(assign_quartile([row.size_fraction], e["q25"], e["q50"], e["q75"])[0]))
            seeds.append((case_rows, lesions, fps))
        per_model.append(seeds)
    out = np.full((weights.shape[0], len(tables.models), len(KEYS)), np.nan)
    for b in range(weights.shape[0]):
        drawn = [cases[i] for i in np.repeat(np.arange(len(cases)), weights[b].astype(int))]
        for mi, seeds in enumerate(per_model):
            acc = np.zeros((len(seeds), len(KEYS)))
            for si, (case_rows, lesions, fps) in enumerate(seeds):
                values = {}
                case_matrix = np.array([case_rows[c] for c in drawn])
                for j, metric in enumerate(METRICS[:6]):
                    values[("overall", metric)] = case_matrix[:, j].mean()
                rows = [les for c in drawn for les in lesions[c]]
                values[("overall", "lesion_recall")] = np.mean([r[1] for r in rows]) if rows else np.nan
                values[("overall", "fp_per_case")] = sum(len(fps[c]) for c in drawn) / len(drawn)
                for q, stratum in enumerate(STRATA[1:]):
                    rq = [r for r in rows if r[0] == q]
                    for j, metric in enumerate(METRICS[:6]):
                        values[(stratum, metric)] = np.mean([r[2][j] for r in rq]) if rq else np.nan
                    values[(stratum, "lesion_recall")] = np.mean([r[1] for r in rq]) if rq else np.nan
                    values[(stratum, "fp_per_case")] = sum(f == q for c in drawn for f in fps[c]) / len(drawn)
                acc[si] = [values[key] for key in KEYS]
            out[b, mi] = acc.mean(axis=0)
    return out
