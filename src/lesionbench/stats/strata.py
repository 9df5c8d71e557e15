"""Per-case sums: the one intermediate form every statistic is computed from.

Each statistic of a data set x model x stratum x metric is a ratio of sums over test cases,
``sum_c num[c] / sum_c den[c]``:

- overall, case-level metric: num = the case's metric, den = 1 (mean over test cases);
- overall ``lesion_recall``: num = hit reference lesions of the case, den = its reference lesions;
- overall ``fp_per_case``: num = false-positive lesions of the case, den = 1;
- quartile Qk, lesion-level metric: num = sum of the metric over the case's reference lesions in Qk,
  den = their count (mean over the lesions of Qk, each lesion weighing one);
- Qk ``lesion_recall``: num = detected reference lesions in Qk, den = reference lesions in Qk;
- Qk ``fp_per_case``: num = false-positive lesions of the case whose own size falls in Qk, den = 1.

Denominators depend only on the reference, so they are the same for every model and seed; this is what
makes the bootstrap paired (one resampling weight per case serves every model) and lets seeds be averaged
on the numerators: the statistic of the seed-averaged numerators is the mean of the per-seed statistics.
Pooling data sets is concatenating their cases, each keeping its own quartile assignment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.lesions import quartile_index
from .tables import CASE_METRICS, METRICS, POOLED, QUARTILES, STRATA, DatasetTables, StudyTableError

KEYS = tuple((stratum, metric) for stratum in STRATA for metric in METRICS)
KEY_INDEX = {key: i for i, key in enumerate(KEYS)}


def assign_quartile(sizes, q25: float, q50: float, q75: float) -> np.ndarray:
    """Quartile index 0..3 (Q1..Q4) of each size, by the data stage's rule (``data.lesions.quartile_index``:
    Q1 if s <= q25, Q2 if s <= q50, Q3 if s <= q75, else Q4; sizes outside the test range go to Q1 or Q4)."""
    return quartile_index(np.asarray(sizes, float).ravel(), {"q25": q25, "q50": q50, "q75": q75})


@dataclass
class CaseSums:
    dataset: str
    case_ids: tuple[str, ...]
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    num: np.ndarray    # (n_models, n_seeds, n_cases, n_keys)
    den: np.ndarray    # (n_cases, n_keys), identical for every model and seed
    edges: dict        # stratum -> (size_low, size_high)

    @property
    def n_cases(self) -> int:
        return len(self.case_ids)

    def n_lesions(self, stratum: str) -> int:
        return int(round(self.den[:, KEY_INDEX[(stratum, "lesion_recall")]].sum()))

    def seed_mean(self) -> np.ndarray:
        """Numerators averaged over seeds: (n_models, n_cases, n_keys)."""
        return self.num.mean(axis=1)


def point_statistics(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Statistics over all cases, ``sum num / sum den``: num (n_models, n_cases, n_keys), den (n_cases,
    n_keys) -> (n_models, n_keys); NaN where the denominator sums to 0 (a stratum without lesions)."""
    top = num.sum(axis=-2)
    bottom = np.broadcast_to(den.sum(axis=0), top.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = top / bottom
    out[bottom == 0] = np.nan
    return out


def _per_case_quartile(case_idx, quartile, weights, n_cases) -> np.ndarray:
    """Sum ``weights`` per (case, quartile): (n_cases, 4)."""
    flat = np.bincount(case_idx * 4 + quartile, weights=weights, minlength=n_cases * 4)
    return flat.reshape(n_cases, 4)


def case_sums(tables: DatasetTables) -> CaseSums:
    """Per-case numerators and denominators of every (stratum, metric) for one checked data set."""
    cases = tables.test_cases
    n = len(cases)
    index = {c: i for i, c in enumerate(cases)}
    e = tables.edges
    q = (e["q25"], e["q50"], e["q75"])
    m_count, s_count, k_count = len(tables.models), len(tables.seeds), len(KEYS)
    num = np.zeros((m_count, s_count, n, k_count))
    den = np.zeros((n, k_count))

    ref = tables.reference
    ref_case = np.array([index[c] for c in ref["case_id"]], np.int64)
    ref_q = assign_quartile(ref["size_fraction"], *q)
    ref_count = np.bincount(ref_case, minlength=n).astype(float)
    ref_count_q = _per_case_quartile(ref_case, ref_q, np.ones(len(ref)), n)
    canonical = {p: i for i, p in enumerate(zip(ref["case_id"], ref["lesion_id"]))}
    for metric in CASE_METRICS:
        den[:, KEY_INDEX[("overall", metric)]] = 1.0
    den[:, KEY_INDEX[("overall", "lesion_recall")]] = ref_count
    den[:, KEY_INDEX[("overall", "fp_per_case")]] = 1.0
    for k, stratum in enumerate(QUARTILES):
        for metric in CASE_METRICS + ("lesion_recall",):
            den[:, KEY_INDEX[(stratum, metric)]] = ref_count_q[:, k]
        den[:, KEY_INDEX[(stratum, "fp_per_case")]] = 1.0

    for mi, model in enumerate(tables.models):
        for si, seed in enumerate(tables.seeds):
            pc = tables.per_case[(tables.per_case.model == model) & (tables.per_case.seed == seed)]
            pc = pc.set_index("case_id").loc[list(cases)]
            out = num[mi, si]
            for metric in CASE_METRICS:
                out[:, KEY_INDEX[("overall", metric)]] = pc[metric].to_numpy(float)
            pl = tables.per_lesion[(tables.per_lesion.model == model) & (tables.per_lesion.seed == seed)]
            r = pl[pl["kind"] == "reference"]
            # Quartile of a reference lesion from lesions.csv (the size the edges were computed on).
            order = np.array([canonical[p] for p in zip(r["case_id"], r["lesion_id"])], np.int64)
            rc, rq = ref_case[order], ref_q[order]
            det = r["detected"].to_numpy(float)
            out[:, KEY_INDEX[("overall", "lesion_recall")]] = np.bincount(rc, weights=det, minlength=n)
            by_q = _per_case_quartile(rc, rq, det, n)
            for k, stratum in enumerate(QUARTILES):
                out[:, KEY_INDEX[(stratum, "lesion_recall")]] = by_q[:, k]
            for metric in CASE_METRICS:
                by_q = _per_case_quartile(rc, rq, r[metric].to_numpy(float), n)
                for k, stratum in enumerate(QUARTILES):
                    out[:, KEY_INDEX[(stratum, metric)]] = by_q[:, k]
            fp = pl[pl["kind"] == "false_positive"]
            fc = np.array([index[c] for c in fp["case_id"]], np.int64)
            fq = assign_quartile(fp["size_fraction"], *q)
            out[:, KEY_INDEX[("overall", "fp_per_case")]] = np.bincount(fc, minlength=n)
            by_q = _per_case_quartile(fc, fq, np.ones(len(fp)), n)
            for k, stratum in enumerate(QUARTILES):
                out[:, KEY_INDEX[(stratum, "fp_per_case")]] = by_q[:, k]

    edges = {"overall": (e["min"], e["max"]), "Q1": (e["min"], e["q25"]), "Q2": (e["q25"], e["q50"]),
             "Q3": (e["q50"], e["q75"]), "Q4": (e["q75"], e["max"])}
    return CaseSums(tables.dataset, tuple(cases), tables.models, tables.seeds, num, den, edges)


def pool(sums: list[CaseSums]) -> CaseSums:
    """All data sets as one: cases concatenated, each keeping its own data set's quartile assignment.
    Size edges of a pooled stratum are the envelope of the per-data-set edges."""
    if not sums:
        raise StudyTableError("nothing to pool: no data set")
    models, seeds = sums[0].models, sums[0].seeds
    for s in sums[1:]:
        if s.models != models or s.seeds != seeds:
            raise StudyTableError(f"cannot pool data sets with different models/seeds: {sums[0].dataset!r} has "
                                  f"{models}/{seeds}, {s.dataset!r} has {s.models}/{s.seeds}")
    edges = {st: (min(s.edges[st][0] for s in sums), max(s.edges[st][1] for s in sums)) for st in STRATA}
    return CaseSums(
        dataset=POOLED,
        case_ids=tuple(f"{s.dataset}/{c}" for s in sums for c in s.case_ids),
        models=models, seeds=seeds,
        num=np.concatenate([s.num for s in sums], axis=2),
        den=np.concatenate([s.den for s in sums], axis=0),
        edges=edges)
