"""Cost of the config check that runs on every Snakemake call, against building each model on the meta device.

Both are timed in a fresh interpreter (as Snakemake pays them), including imports:
- ours: ``lesionbench.config_check`` (unknown keys, labels, encoder names from a static copy of smp's
  registry, input sizes, external folders) on config/config.yaml and config/full.yaml;
- the alternative: import segmentation-models-pytorch (and torch) and build the four models once on the meta
  device (no memory, no weights); smp 0.6 cannot build ``mit_*`` encoders on the meta device (it calls
  ``Tensor.item()`` while building), so those are built on the CPU.

    .venv/bin/python benchmarks/config_check_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

OURS = """
import yaml
from lesionbench.config_check import check_config_keys, check_run_config
for name in ("config/config.yaml", "config/full.yaml"):
    config = yaml.safe_load(open(name))
    check_config_keys(config, "workflow/schemas/config.schema.yaml", [name])
    check_run_config(config, [name])
"""

META = """
import yaml, torch
from lesionbench.models import build_model
for name in ("config/config.yaml", "config/full.yaml"):
    config = yaml.safe_load(open(name))
    for model, cfg in config["models"].items():
        try:
            with torch.device("meta"):
                build_model(model, cfg, in_channels=3)
        except Exception:  # smp 0.6's Mix Transformer calls .item() while building: not possible on meta
            build_model(model, cfg, in_channels=3)
"""


def wall(code: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    empty = wall("pass", args.repeats)
    ours, meta = wall(OURS, args.repeats), wall(META, args.repeats)
    print(f"{'fresh interpreter (baseline)':<44} {empty:7.2f} s")
    print(f"{'lesionbench.config_check, both configs':<44} {ours:7.2f} s   (+{ours - empty:.2f} s)")
    print(f"{'smp models built on the meta device':<44} {meta:7.2f} s   (+{meta - empty:.2f} s)")


if __name__ == "__main__":
    main()
