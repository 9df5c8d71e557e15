"""Speed of the paired case bootstrap (weight-matrix form) against a naive per-resample loop.

Workload: 3 data sets of realistic size (60, 80 and 100 test cases, about 4 reference lesions per case),
4 models (6 pairs), 8 statistics (6 metrics, lesion recall, FP per case) x 5 strata (overall, Q1..Q4) on
lesion set `all` plus 6 metrics x 4 quartiles on `detected` and `common` (the pairwise table covers `all`
and `common`), 10,000 resamples. Also timed: the one pass that builds the per-case sums of every lesion set,
and the point estimates of every table from them. The naive loop runs on the first data set with fewer
resamples and is extrapolated; both give the same numbers on shared weights (checked here too).

Rank stability (``ranking_stability.csv``) on the full-study grid: the same 4 models and 3 data sets plus
``pooled``, 5 strata, the 2 paired lesion sets (``all``, ``common``), every metric of each set, 10,000
resamples, from weights to table rows (budget 10 s on 2 cores); beside it, rank shares counted resample by
resample in a Python loop on the first data set (same values on shared resamples).

    .venv/bin/python benchmarks/bootstrap_speed.py [--resamples 10000] [--naive-resamples 50]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from lesionbench.stats import aggregate, bootstrap, comparisons, stability
from lesionbench.stats.strata import KEYS, PAIRED_SETS, case_sums, key_indices
from lesionbench.stats.tables import HIGHER_IS_BETTER

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import study_tables


def naive_rank_shares(samples: np.ndarray, keys) -> np.ndarray:
    """Reference: for each resample and key, rank the models one by one (ties share their ranks evenly)."""
    b_count, m, k_count = samples.shape
    shares = np.zeros((m, m, k_count))
    valid = np.zeros(k_count)
    for k, (_, _, metric) in enumerate(keys):
        for b in range(b_count):
            v = samples[b, :, k]
            if np.isnan(v).any():
                continue
            valid[k] += 1
            score = np.round(-v if HIGHER_IS_BETTER[metric] else v, 10)
            first = rankdata(score, method="min").astype(int)  # 1-based best rank of each tie group
            for i in range(m):
                tied = int((score == score[i]).sum())
                for r in range(first[i], first[i] + tied):
                    shares[i, r - 1, k] += 1.0 / tied
    with np.errstate(invalid="ignore", divide="ignore"):
        return shares / valid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--naive-resamples", type=int, default=50)
    args = parser.parse_args()

    sizes = {"bench_a": 60, "bench_b": 80, "bench_c": 100}
    tables = {
        name: study_tables.to_tables(study_tables.make_dataset(name, n_cases=n, seed=i))
        for i, (name, n) in enumerate(sizes.items())
    }
    t0 = time.perf_counter()
    sums = {name: case_sums(t) for name, t in tables.items()}
    t_sums = time.perf_counter() - t0
    t0 = time.perf_counter()
    estimates = aggregate.all_estimates(sums)
    t_est = time.perf_counter() - t0
    print(
        f"per-case sums of every lesion set (one pass): {t_sums:.2f} s; point estimates of every table "
        f"({len(estimates)} rows, pooled included): {t_est:.2f} s"
    )
    n_lesions = {name: s.n_lesions("overall") for name, s in sums.items()}
    print("data sets (test cases / reference lesions): " + ", ".join(f"{k} {sizes[k]}/{n_lesions[k]}" for k in sizes))

    t0 = time.perf_counter()
    table = bootstrap.directional_robustness(sums, args.resamples, 20261123, 0.95, 3)
    fast = time.perf_counter() - t0
    print(
        f"weight-matrix bootstrap: {args.resamples} resamples, {len(table)} rows "
        f"(pairs x metrics x strata x data sets) in {fast:.2f} s"
    )

    first = next(iter(tables))
    s = sums[first]
    weights = bootstrap.weight_matrix(s.n_cases, args.naive_resamples, bootstrap.dataset_rng(1, first))
    t0 = time.perf_counter()
    vector = bootstrap.ratio_statistics(s.num, s.den, weights)
    t_vec = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive = bootstrap.naive_bootstrap(tables[first], weights)
    t_naive = time.perf_counter() - t0
    same = np.array_equal(np.isnan(vector), np.isnan(naive)) and np.allclose(vector, naive, equal_nan=True)
    per = t_naive / args.naive_resamples
    scale = sum(sizes.values()) / sizes[first]
    print(
        f"side by side on {first}, {args.naive_resamples} resamples: weight matrix {t_vec * 1e3:.1f} ms, "
        f"naive loop {t_naive * 1e3:.0f} ms ({per * 1e3:.1f} ms per resample); same values: {same}"
    )
    print(
        f"naive loop extrapolated to {args.resamples} resamples x {len(sizes)} data sets: "
        f"~{per * args.resamples * scale:.0f} s (vs {fast:.2f} s, ~{per * args.resamples * scale / fast:.0f}x)"
    )
    t0 = time.perf_counter()
    stab = comparisons.rank_stability(sums, args.resamples, 20261123)
    t_stab = time.perf_counter() - t0
    n_keys = len(stab.drop_duplicates(["dataset", "lesion_set", "stratum", "metric"]))
    print(
        f"rank stability, full-study grid: 4 models x {len(sizes)} data sets + pooled x 5 strata x 2 lesion "
        f"sets x every metric ({n_keys} settings), {args.resamples} resamples: {len(stab)} rows in "
        f"{t_stab:.2f} s (budget 10 s)"
    )
    paired = key_indices(PAIRED_SETS)
    keys = [KEYS[k] for k in paired]
    few = bootstrap.ratio_statistics(s.num[..., paired], s.den[..., paired], weights)
    t0 = time.perf_counter()
    vec_shares, _ = stability.rank_shares(few, [HIGHER_IS_BETTER[m] for _, _, m in keys])
    t_vs = time.perf_counter() - t0
    t0 = time.perf_counter()
    loop_shares = naive_rank_shares(few, keys)
    t_loop = time.perf_counter() - t0
    same_ranks = np.allclose(vec_shares, loop_shares, equal_nan=True)
    print(
        f"rank shares side by side on {first}, {args.naive_resamples} resamples: vectorized "
        f"{t_vs * 1e3:.1f} ms, per-resample loop {t_loop * 1e3:.0f} ms; same values: {same_ranks}"
    )
    if not same:
        raise SystemExit("weight-matrix and naive bootstrap disagree")
    if not same_ranks:
        raise SystemExit("vectorized and per-resample rank shares disagree")
    if fast >= 5.0:
        raise SystemExit(f"bootstrap took {fast:.2f} s, budget is 5 s")
    if t_stab >= 10.0:
        raise SystemExit(f"rank stability took {t_stab:.2f} s, budget is 10 s")


if __name__ == "__main__":
    main()
