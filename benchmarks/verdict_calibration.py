"""Error rates of the verdict: false positives on null studies and power on planted effects, by simulation.

Every simulated data set is per-case sums drawn from one per-lesion error law
(``lesionbench.stats.verdict_simulation``) and goes through the verdict's own decision rule
(``claim.boundary_verdicts``: permutation tests, Holm over the data sets and the pooled row, resolution floor,
the dependencies of findings 4 and 5; Dice tie and sanity checks taken as passed). Scenarios:

- ``exchangeable``: four models from one law (the null) at each number of common Q1 lesions, and at the
  size of the issue's held-out null sets (40 images x 18 lesions: 180 common Q1 lesions);
- ``negative_control``: two replicates from one law (the negative-control pair) on a study shaped like the
  default run's negative control (its three data sets' test cases, lesions per case and common Q1 lesions),
  pooled row included; one row per data set and one for the whole study;
- ``planted``: four models, two of them with their Q1 boundary error scaled so their expected Q1 HD95 is
  ``effect`` % higher (Dice tied), at each effect x number of common Q1 lesions: the power curves.

Writes ``results/verdict_calibration.csv`` (finding, scenario, n_common_q1_lesions, effect, n_sims,
supported_rate, ci_low, ci_high; 95 % Clopper-Pearson intervals from scipy.stats.binomtest; finding
``any_boundary_finding`` = any of findings 2-5 supported), a figure, and with ``--write-power-table`` the
package's power table (``lesionbench/stats/verdict_power.csv``) the claim check reads ``lesions_needed`` from.

    .venv/bin/python benchmarks/verdict_calibration.py            # defaults: 200 sims per cell, 2 workers
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import binomtest

from lesionbench.io.atomic import write_csv
from lesionbench.stats import calibration, claim
from lesionbench.stats.strata import pool
from lesionbench.stats.verdict_simulation import simulated_sums

COLUMNS = ["finding", "scenario", "n_common_q1_lesions", "effect", "n_sims", "supported_rate", "ci_low", "ci_high"]
ANY = "any_boundary_finding"
ISSUE_NULL_Q1 = 180  # 40 images x 18 lesions, a quarter of them in Q1
# The default run's negative control (the three-seed config/config.yaml, results/controls/negative/
# study_datasets.csv): test cases, test lesions and common Q1 lesions per data set.
DEFAULT_TEST_SETS = {"synthetic_fundus": (24, 207, 49), "synthetic_mri": (20, 156, 31), "synthetic_ct": (20, 152, 34)}
SETTINGS = {
    "min_lesions": 10,
    "min_boundary_spread_pct": 10.0,
    "separation_ratio": 2.0,
    "alpha": 0.05,
    "permutation_seed": 20261205,
}
FLOOR_MM = 0.5  # resolution_floor_voxels 0.5 at 1 mm spacing


def _one_study(task: tuple) -> dict:
    """{(dataset, finding): verdict} of one simulated study."""
    kind, seed, n_q1, effect, permutations, test_sets = task
    rng = np.random.default_rng([seed, int(effect * 1000), n_q1])
    settings = {**SETTINGS, "permutations": permutations, "permutation_seed": seed}
    if kind == "negative_control":
        sums = {
            name: simulated_sums(rng, n_common, n_models=2, lesions_per_case=max(1, lesions // cases), dataset=name)
            for name, (cases, lesions, n_common) in test_sets.items()
        }
        sums["pooled"] = pool([sums[d] for d in sorted(sums)])
    else:
        sums = {"sim": simulated_sums(rng, n_q1, effect_pct=effect, dataset="sim")}
    return claim.boundary_verdicts(sums, settings, {d: FLOOR_MM for d in sums})


def _rate_rows(verdicts: list[dict], scenario: str, n_q1: int, effect: float, dataset: str | None) -> list[dict]:
    rows = []
    for finding in (*claim.TESTED, ANY):
        hits = 0
        for v in verdicts:
            keys = [k for k in v if (dataset is None or k[0] == dataset)]
            keys = [k for k in keys if finding == ANY or k[1] == finding]
            hits += any(v[k] == "supported" for k in keys)
        ci = binomtest(hits, len(verdicts)).proportion_ci(0.95)
        rows.append(
            {
                "finding": finding,
                "scenario": scenario,
                "n_common_q1_lesions": n_q1,
                "effect": effect,
                "n_sims": len(verdicts),
                "supported_rate": hits / len(verdicts),
                "ci_low": ci.low,
                "ci_high": ci.high,
            }
        )
    return rows


def run(args) -> pd.DataFrame:
    cells = [("exchangeable", n, 0.0) for n in (*args.n_q1, ISSUE_NULL_Q1)]
    cells += [("planted", n, e) for e in args.effects for n in args.n_q1]
    cells += [("negative_control", 0, 0.0)]
    rows = []
    with ProcessPoolExecutor(args.workers) as pool_:
        for kind, n_q1, effect in cells:
            tasks = [(kind, s, n_q1, effect, args.permutations, DEFAULT_TEST_SETS) for s in range(args.sims)]
            verdicts = list(pool_.map(_one_study, tasks, chunksize=max(1, args.sims // (4 * args.workers))))
            if kind == "negative_control":
                for name, (_, _, n_common) in DEFAULT_TEST_SETS.items():
                    rows += _rate_rows(verdicts, f"negative_control/{name}", n_common, 0.0, name)
                rows += _rate_rows(verdicts, "negative_control/pooled", 0, 0.0, "pooled")
                rows += _rate_rows(verdicts, "negative_control/study", 0, 0.0, None)
            else:
                rows += _rate_rows(verdicts, kind, n_q1, effect, None)
            last = rows[-1]
            print(
                f"{kind:>16} n_q1 {n_q1:>4} effect {effect:>5}: any boundary finding supported "
                f"{last['supported_rate']:.3f} [{last['ci_low']:.3f}, {last['ci_high']:.3f}]",
                flush=True,
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def figure(table: pd.DataFrame, path: Path, alpha: float) -> None:
    findings = list(claim.TESTED)
    fig, axes = plt.subplots(1, len(findings) + 1, figsize=(4.2 * (len(findings) + 1), 3.8))
    planted = table[table.scenario == "planted"]
    for ax, finding in zip(axes, findings):
        for effect, g in planted[planted.finding == finding].groupby("effect"):
            g = g.sort_values("n_common_q1_lesions")
            ax.plot(g.n_common_q1_lesions, g.supported_rate, marker="o", label=f"{effect:g} %")
        ax.axhline(calibration.TARGET_POWER, color="grey", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(finding, fontsize=9)
        ax.set_xlabel("common Q1 lesions")
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("share supported (power)")
    axes[0].legend(title="planted HD95 effect", fontsize=7, title_fontsize=7, loc="lower right")
    null = table[table.scenario != "planted"]
    null = null[null.finding == ANY]
    y = np.arange(len(null))
    ax = axes[-1]
    ax.errorbar(
        null.supported_rate,
        y,
        xerr=[null.supported_rate - null.ci_low, null.ci_high - null.supported_rate],
        fmt="o",
        capsize=3,
    )
    ax.axvline(alpha, color="red", ls="--", lw=0.8)
    ax.set_yticks(y, [f"{s} ({n})" if n else s for s, n in zip(null.scenario, null.n_common_q1_lesions)], fontsize=7)
    ax.set_xlabel("share with any boundary finding supported")
    ax.set_title("null studies: false-positive rate (95% CI)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=200, help="simulated studies per cell (default 200)")
    parser.add_argument("--permutations", type=int, default=199, help="relabellings per test (default 199)")
    parser.add_argument("--n-q1", type=int, nargs="+", default=[10, 20, 40, 80, 160])
    parser.add_argument("--effects", type=float, nargs="+", default=[10.0, 20.0, calibration.PAPER_EFFECT_PCT, 80.0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/verdict_calibration.csv"))
    parser.add_argument("--figure", type=Path, default=Path("figures/verdict_calibration.png"))
    parser.add_argument("--write-power-table", action="store_true", help="rewrite lesionbench/stats/verdict_power.csv")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    cpu = time.process_time()
    table = run(args)
    write_csv(table, args.out)
    figure(table, args.figure, SETTINGS["alpha"])
    null = table[(table.scenario != "planted")]
    worst = null.loc[null.ci_low.idxmax()]
    print(f"\nwrote {args.out} ({len(table)} rows) and {args.figure}")
    print(
        f"null cells: largest lower CI end {worst.ci_low:.3f} ({worst.finding}, {worst.scenario}); "
        f"alpha {SETTINGS['alpha']}: {'none' if worst.ci_low <= SETTINGS['alpha'] else 'some'} significantly above"
    )
    power = table[(table.scenario == "planted") & (table.effect == calibration.PAPER_EFFECT_PCT)]
    for finding in claim.TESTED:
        needed = calibration.lesions_needed(finding, power)
        print(f"lesions needed for 80% power at the paper's effect, {finding}: {needed}")
    if args.write_power_table:
        target = Path(calibration.__file__).with_name(calibration.POWER_TABLE)
        planted = table[table.scenario == "planted"][list(calibration.POWER_COLUMNS)]
        write_csv(planted, target)
        print(f"wrote {target}")
    print(f"wall {time.perf_counter() - start:.0f} s, main-process CPU {time.process_time() - cpu:.0f} s")


if __name__ == "__main__":
    main()
