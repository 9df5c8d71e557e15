"""Per-case sums: the one intermediate form every statistic is computed from, for every lesion set.

Each statistic of a data set x model x seed x lesion set x stratum x metric is a ratio of sums over the test
cases, ``sum_c num[c] / sum_c den[c]``:

- stratum ``overall`` (lesion set ``all`` only), case-level metric: num = the case's metric, den = 1 (mean
  over test cases); ``lesion_recall``: num = hit reference lesions of the case, den = its reference lesions;
  ``fp_per_case``: num = false-positive lesions of the case, den = 1;
- quartile Qk, lesion-level metric: num = sum of the metric over the case's reference lesions of Qk that
  belong to the lesion set, den = their count (mean over those lesions, each lesion weighing one);
- Qk ``lesion_recall`` (set ``all``): num = detected reference lesions in Qk, den = reference lesions in Qk;
- Qk ``fp_per_case`` (set ``all``): num = false-positive lesions of the case whose own size falls in Qk,
  den = 1.

Lesion sets (``LESION_SETS``) say which reference lesions a lesion-level mean runs over:

- ``all``: every reference lesion; a missed lesion scores Dice 0 and the distance penalty (BraTS rule). Its
  denominators depend on the reference only, so they are the same for every model and seed.
- ``detected``: per model and seed, the lesions that model (in that seed) detected: delineation given
  detection. Denominators differ by model and seed.
- ``common``: the lesions detected by every model and every seed of the data set. Denominators are the same
  for every model and seed, so model comparisons on it are paired and fair.

Recall and FP per case are detection figures and exist in set ``all`` only (in ``detected`` recall would be
1 by construction). A value is averaged over seeds as the mean of the per-seed statistics.

The shared interface (used by every table of the study and by later analyses) has two equivalent forms:

- ``CaseSums`` (``case_sums(tables)``): arrays ``num`` and ``den`` of shape (n_models, n_seeds, n_cases,
  n_keys), key k = ``KEYS[k]`` = (lesion_set, stratum, metric), ``KEY_INDEX`` maps a key to k. Vectorized
  statistics (point values, the bootstrap's weight-matrix products, rankings) read these.
- ``sums_frame(sums)``: the same numbers as a tidy long-form DataFrame, one row per dataset x model x seed x
  lesion_set x stratum x case_id x metric with columns ``metric_sum`` (num) and ``count`` (den), in
  ``SUMS_COLUMNS`` order. Any statistic is ``metric_sum.sum() / count.sum()`` over the cases it covers.

The per-lesion membership behind the sets is ``lesion_membership(tables)``.
Pooling data sets is concatenating their cases, each keeping its own quartile assignment and its own common
set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.lesions import quartile_index
from .tables import CASE_METRICS, LESION_SETS, METRICS, POOLED, QUARTILES, STRATA, DatasetTables, StudyTableError

ALL, DETECTED, COMMON = LESION_SETS
# Lesion sets whose denominators are the same for every model and seed (paired comparisons: rankings and the
# bootstrap are computed on these).
PAIRED_SETS = (ALL, COMMON)

KEYS = tuple(
    [(ALL, stratum, metric) for stratum in STRATA for metric in METRICS]
    + [(ls, q, metric) for ls in (DETECTED, COMMON) for q in QUARTILES for metric in CASE_METRICS]
)
KEY_INDEX = {key: i for i, key in enumerate(KEYS)}

SUMS_COLUMNS = ("dataset", "model", "seed", "lesion_set", "stratum", "case_id", "metric", "metric_sum", "count")
MEMBERSHIP_COLUMNS = ("model", "seed", "case_id", "lesion_id", "quartile", "detected", "common")


def assign_quartile(sizes, q25: float, q50: float, q75: float) -> np.ndarray:
    """Quartile index 0..3 (Q1..Q4) of each size, by the data stage's rule (``data.lesions.quartile_index``:
    Q1 if s <= q25, Q2 if s <= q50, Q3 if s <= q75, else Q4; sizes outside the test range go to Q1 or Q4)."""
    return quartile_index(np.asarray(sizes, float).ravel(), {"q25": q25, "q50": q50, "q75": q75})


def key_indices(lesion_sets=LESION_SETS) -> np.ndarray:
    """Indices of the keys of the given lesion sets, in KEYS order."""
    return np.array([k for k, key in enumerate(KEYS) if key[0] in lesion_sets], np.int64)


@dataclass
class CaseSums:
    dataset: str
    case_ids: tuple[str, ...]
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    num: np.ndarray  # (n_models, n_seeds, n_cases, n_keys)
    den: np.ndarray  # (n_models, n_seeds, n_cases, n_keys); identical over models/seeds for sets all, common
    edges: dict  # stratum -> (size_low, size_high)
    edge_rule: str = "test_quartiles"  # where the quartile edges come from (stratification.edges)

    @property
    def n_cases(self) -> int:
        return len(self.case_ids)

    def lesion_counts(self, lesion_set: str, stratum: str) -> np.ndarray:
        """Reference lesions a (lesion_set, stratum) mean runs over: (n_models, n_seeds) integer counts."""
        metric = "lesion_recall" if lesion_set == ALL else "dice"
        return np.rint(self.den[:, :, :, KEY_INDEX[(lesion_set, stratum, metric)]].sum(axis=2)).astype(int)

    def n_lesions(self, stratum: str, lesion_set: str = ALL) -> int:
        """Lesion count of a stratum in a set that is the same for every model and seed (all, common)."""
        if lesion_set not in PAIRED_SETS:
            raise ValueError(f"lesion set {lesion_set!r} has a count per model and seed: use lesion_counts")
        return int(self.lesion_counts(lesion_set, stratum)[0, 0])


def point_statistics(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Statistics over all cases, ``sum num / sum den`` over the case axis (-2): num and den (..., n_cases,
    n_keys) -> (..., n_keys); NaN where the denominator sums to 0 (no lesion of the set in the stratum)."""
    top = num.sum(axis=-2)
    bottom = np.broadcast_to(den.sum(axis=-2), top.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = top / bottom
    out[bottom == 0] = np.nan
    return out


def seed_average(per_seed: np.ndarray, seed_axis: int = -2) -> np.ndarray:
    """Mean over seeds of per-seed statistics, ignoring seeds where the statistic is undefined (a model that
    detected no lesion of a stratum in one seed); NaN only where no seed defines it."""
    defined = ~np.isnan(per_seed)
    count = defined.sum(axis=seed_axis)
    total = np.where(defined, per_seed, 0.0).sum(axis=seed_axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count
    out[count == 0] = np.nan
    return out


def _per_case_quartile(case_idx, quartile, weights, n_cases) -> np.ndarray:
    """Sum ``weights`` per (case, quartile): (n_cases, 4)."""
    flat = np.bincount(case_idx * 4 + quartile, weights=weights, minlength=n_cases * 4)
    return flat.reshape(n_cases, 4)


def _reference_layout(tables: DatasetTables):
    """Case index, quartile and canonical position of every evaluated reference lesion (lesions.csv order)."""
    index = {c: i for i, c in enumerate(tables.test_cases)}
    e = tables.edges
    ref = tables.reference
    ref_case = np.array([index[c] for c in ref["case_id"]], np.int64)
    ref_q = assign_quartile(ref["size_fraction"], e["q25"], e["q50"], e["q75"])
    canonical = {p: i for i, p in enumerate(zip(ref["case_id"], ref["lesion_id"]))}
    return index, ref_case, ref_q, canonical


def _model_seed_lesions(tables: DatasetTables, canonical: dict):
    """Per (model, seed): its per-lesion rows, reference rows reordered to the canonical lesion order."""
    out = {}
    for model in tables.models:
        for seed in tables.seeds:
            pl = tables.per_lesion[(tables.per_lesion.model == model) & (tables.per_lesion.seed == seed)]
            r = pl[pl["kind"] == "reference"]
            order = np.array([canonical[p] for p in zip(r["case_id"], r["lesion_id"])], np.int64)
            ref = r.iloc[np.argsort(order, kind="stable")] if len(r) else r
            out[(model, seed)] = (ref, pl[pl["kind"] == "false_positive"])
    return out


def detection_matrix(tables: DatasetTables, rows=None) -> np.ndarray:
    """(n_models, n_seeds, n_lesions) booleans: lesion i (canonical order) detected by model m in seed s."""
    _, _, _, canonical = _reference_layout(tables)
    rows = rows if rows is not None else _model_seed_lesions(tables, canonical)
    det = np.zeros((len(tables.models), len(tables.seeds), len(canonical)), bool)
    for mi, model in enumerate(tables.models):
        for si, seed in enumerate(tables.seeds):
            ref = rows[(model, seed)][0]
            if len(ref) != len(canonical):
                raise StudyTableError(
                    f"data set {tables.dataset!r}, model {model!r}, seed {seed}: "
                    f"{len(ref)} reference lesion rows, expected {len(canonical)}"
                )
            det[mi, si] = ref["detected"].to_numpy(bool)
    return det


def lesion_membership(tables: DatasetTables) -> pd.DataFrame:
    """One row per model x seed x evaluated reference lesion: its quartile (Q1..Q4), whether this model and
    seed detected it, and whether it is in the ``common`` set (detected by every model and seed)."""
    det = detection_matrix(tables)
    common = det.all(axis=(0, 1))
    _, _, ref_q, _ = _reference_layout(tables)
    ref = tables.reference
    frames = []
    for mi, model in enumerate(tables.models):
        for si, seed in enumerate(tables.seeds):
            frames.append(
                pd.DataFrame(
                    {
                        "model": model,
                        "seed": seed,
                        "case_id": ref["case_id"].to_numpy(),
                        "lesion_id": ref["lesion_id"].to_numpy(),
                        "quartile": np.array(QUARTILES)[ref_q],
                        "detected": det[mi, si],
                        "common": common,
                    }
                )
            )
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=MEMBERSHIP_COLUMNS)
    return out[list(MEMBERSHIP_COLUMNS)]


def case_sums(tables: DatasetTables) -> CaseSums:
    """Per-case numerators and denominators of every (lesion_set, stratum, metric) of one checked data set,
    built in one pass over its per-case and per-lesion tables."""
    cases = tables.test_cases
    n = len(cases)
    index, ref_case, ref_q, canonical = _reference_layout(tables)
    e = tables.edges
    q = (e["q25"], e["q50"], e["q75"])
    m_count, s_count, k_count = len(tables.models), len(tables.seeds), len(KEYS)
    num = np.zeros((m_count, s_count, n, k_count))
    den = np.zeros((m_count, s_count, n, k_count))
    rows = _model_seed_lesions(tables, canonical)
    det = detection_matrix(tables, rows)
    common = det.all(axis=(0, 1)).astype(float)

    # Denominators of set `all` and `common`: from the reference and the common set alone.
    ref_count_q = _per_case_quartile(ref_case, ref_q, np.ones(len(ref_case)), n)
    common_q = _per_case_quartile(ref_case, ref_q, common, n)
    for metric in CASE_METRICS:
        den[..., KEY_INDEX[(ALL, "overall", metric)]] = 1.0
    den[..., KEY_INDEX[(ALL, "overall", "lesion_recall")]] = np.bincount(ref_case, minlength=n)
    den[..., KEY_INDEX[(ALL, "overall", "fp_per_case")]] = 1.0
    for k, stratum in enumerate(QUARTILES):
        for metric in CASE_METRICS + ("lesion_recall",):
            den[..., KEY_INDEX[(ALL, stratum, metric)]] = ref_count_q[:, k]
        den[..., KEY_INDEX[(ALL, stratum, "fp_per_case")]] = 1.0
        for metric in CASE_METRICS:
            den[..., KEY_INDEX[(COMMON, stratum, metric)]] = common_q[:, k]

    for mi, model in enumerate(tables.models):
        for si, seed in enumerate(tables.seeds):
            pc = tables.per_case[(tables.per_case.model == model) & (tables.per_case.seed == seed)]
            pc = pc.set_index("case_id").loc[list(cases)]
            out, dout = num[mi, si], den[mi, si]
            for metric in CASE_METRICS:
                out[:, KEY_INDEX[(ALL, "overall", metric)]] = pc[metric].to_numpy(float)
            ref, fp = rows[(model, seed)]
            hit = det[mi, si].astype(float)
            out[:, KEY_INDEX[(ALL, "overall", "lesion_recall")]] = np.bincount(ref_case, weights=hit, minlength=n)
            hit_q = _per_case_quartile(ref_case, ref_q, hit, n)
            for k, stratum in enumerate(QUARTILES):
                out[:, KEY_INDEX[(ALL, stratum, "lesion_recall")]] = hit_q[:, k]
                for metric in CASE_METRICS:
                    dout[:, KEY_INDEX[(DETECTED, stratum, metric)]] = hit_q[:, k]
            for metric in CASE_METRICS:
                values = ref[metric].to_numpy(float)
                # one weighted sum per lesion set: all lesions, this model's hits, the common hits
                for lesion_set, weight in ((ALL, 1.0), (DETECTED, hit), (COMMON, common)):
                    by_q = _per_case_quartile(ref_case, ref_q, values * weight, n)
                    for k, stratum in enumerate(QUARTILES):
                        out[:, KEY_INDEX[(lesion_set, stratum, metric)]] = by_q[:, k]
            fc = np.array([index[c] for c in fp["case_id"]], np.int64)
            fq = assign_quartile(fp["size_fraction"], *q)
            out[:, KEY_INDEX[(ALL, "overall", "fp_per_case")]] = np.bincount(fc, minlength=n)
            by_q = _per_case_quartile(fc, fq, np.ones(len(fp)), n)
            for k, stratum in enumerate(QUARTILES):
                out[:, KEY_INDEX[(ALL, stratum, "fp_per_case")]] = by_q[:, k]

    edges = {
        "overall": (e["min"], e["max"]),
        "Q1": (e["min"], e["q25"]),
        "Q2": (e["q25"], e["q50"]),
        "Q3": (e["q50"], e["q75"]),
        "Q4": (e["q75"], e["max"]),
    }
    return CaseSums(
        tables.dataset,
        tuple(cases),
        tables.models,
        tables.seeds,
        num,
        den,
        edges,
        str(e.get("edge_rule", "test_quartiles")),
    )


def sums_frame(sums: CaseSums) -> pd.DataFrame:
    """The per-case sums as a tidy long-form table (``SUMS_COLUMNS``), sorted by model, seed, key, case."""
    m, s, c, k = sums.num.shape
    mi, si, ki, ci = np.meshgrid(np.arange(m), np.arange(s), np.arange(k), np.arange(c), indexing="ij")
    mi, si, ki, ci = (a.ravel() for a in (mi, si, ki, ci))
    keys = np.array(KEYS, dtype=object)
    return pd.DataFrame(
        {
            "dataset": sums.dataset,
            "model": np.array(sums.models, dtype=object)[mi],
            "seed": np.array(sums.seeds, int)[si],
            "lesion_set": keys[ki, 0],
            "stratum": keys[ki, 1],
            "case_id": np.array(sums.case_ids, dtype=object)[ci],
            "metric": keys[ki, 2],
            "metric_sum": sums.num[mi, si, ci, ki],
            "count": sums.den[mi, si, ci, ki],
        },
        columns=list(SUMS_COLUMNS),
    )


def pool(sums: list[CaseSums]) -> CaseSums:
    """All data sets as one: cases concatenated, each keeping its own data set's quartile assignment and
    common set. Size edges of a pooled stratum are the envelope of the per-data-set edges; its edge rule is
    the data sets' rule when they share one, else ``mixed``."""
    if not sums:
        raise StudyTableError("nothing to pool: no data set")
    models, seeds = sums[0].models, sums[0].seeds
    for s in sums[1:]:
        if s.models != models or s.seeds != seeds:
            raise StudyTableError(
                f"cannot pool data sets with different models/seeds: {sums[0].dataset!r} has "
                f"{models}/{seeds}, {s.dataset!r} has {s.models}/{s.seeds}"
            )
    edges = {st: (min(s.edges[st][0] for s in sums), max(s.edges[st][1] for s in sums)) for st in STRATA}
    return CaseSums(
        dataset=POOLED,
        case_ids=tuple(f"{s.dataset}/{c}" for s in sums for c in s.case_ids),
        models=models,
        seeds=seeds,
        num=np.concatenate([s.num for s in sums], axis=2),
        den=np.concatenate([s.den for s in sums], axis=2),
        edges=edges,
        edge_rule=rules.pop() if len(rules := {s.edge_rule for s in sums}) == 1 else "mixed",
    )
