"""Lesion recall counted per merged lesion, the BraTS 2023 counting unit, beside the per-component recall.

BraTS merges reference lesions whose dilations touch into one lesion (``per_lesion.csv`` column
``merged_lesion_id``); every member of a merged lesion shares its detection. ``lesion_recall_merged`` of a
data set x model = detected merged lesions / merged lesions, over all test cases; the per-component
``lesion_recall`` counts every connected component instead. Seeds: the mean of the per-seed recalls.

As a ratio of per-case sums (num = detected merged lesions of the case, den = its merged lesions), it is
resampled with the data set's bootstrap weights like every other statistic (``bootstrap``), so its CI uses
the same resamples as the rest of the overall table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tables import DatasetTables, StudyTableError

MERGED_RECALL = "lesion_recall_merged"


@dataclass
class MergedRecallSums:
    dataset: str
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    num: np.ndarray  # (n_models, n_seeds, n_cases): detected merged lesions per case
    den: np.ndarray  # (n_cases,): merged lesions per case, the same for every model and seed


def merged_recall_sums(tables: DatasetTables) -> MergedRecallSums:
    """Per-case detected and total merged lesions of every model and seed of one checked data set.

    The merging depends on the reference and the dilation radius only, so every model and seed must report
    the same merged lesions; a table that does not (e.g. evaluated with another dilation) is an error naming
    it. A merged lesion counts as detected when its rows say so (any member: they share the flag).
    """
    cases = list(tables.test_cases)
    index = {c: i for i, c in enumerate(cases)}
    num = np.zeros((len(tables.models), len(tables.seeds), len(cases)))
    den, first = None, None
    for mi, model in enumerate(tables.models):
        for si, seed in enumerate(tables.seeds):
            pl = tables.per_lesion[(tables.per_lesion.model == model) & (tables.per_lesion.seed == seed)]
            ref = pl[pl["kind"] == "reference"]
            grouped = ref.groupby(["case_id", "merged_lesion_id"], sort=True)["detected"].any()
            counts = np.zeros(len(cases))
            hits = np.zeros(len(cases))
            for case, det in zip(grouped.index.get_level_values("case_id"), grouped.to_numpy(bool)):
                counts[index[case]] += 1
                hits[index[case]] += float(det)
            src = pl["source_file"].iloc[0] if len(pl) else f"{tables.dataset}/{model}/seed{seed}"
            if den is None:
                den, first = counts, src
            elif not np.array_equal(den, counts):
                c = cases[int(np.flatnonzero(den != counts)[0])]
                raise StudyTableError(
                    f"{src}: merged lesions of case {c!r} differ from those of {first} "
                    f"({int(counts[index[c]])} vs {int(den[index[c]])}); were the tables "
                    f"evaluated with different lesion dilation radii?"
                )
            num[mi, si] = hits
    if den is None:
        den = np.zeros(len(cases))
    return MergedRecallSums(tables.dataset, tuple(tables.models), tuple(tables.seeds), num, den)


def merged_recall_samples(m: MergedRecallSums, weights: np.ndarray):
    """Observed (n_models,) and resampled (B, n_models) merged-lesion recall, seeds averaged; NaN where no
    merged lesion is present (in the data set, or in a resample)."""
    from .bootstrap import ratio_statistics
    from .strata import point_statistics, seed_average

    num = m.num[..., None]  # (M, S, C, 1)
    den = np.broadcast_to(m.den[None, None, :, None], num.shape)
    observed = seed_average(point_statistics(num, den), seed_axis=1)[:, 0]
    return observed, ratio_statistics(num, den, weights)[:, :, 0]
