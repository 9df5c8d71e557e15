"""Training-step throughput: lesionbench against a bare segmentation-models-pytorch + PyTorch loop.

Both sides train the same model (built from config/config.yaml `models:`, same initial weights) on the
same batch size and input size:
- lesionbench: `lesionbench.training.train_step`: a batch sampled from memory-mapped prepared cases
  (foreground-slice sampling, crop/pad or resize), flips/rot90/intensity augmentation, Dice + BCE,
  AdamW, warm-up/cosine LR schedule;
- bare: one fixed pre-made tensor batch, smp DiceLoss + BCEWithLogitsLoss, AdamW, nothing else.
The two loops alternate step by step (so load from other processes hits both alike); the median step time
of each gives images/s and the overhead of lesionbench in percent (target: under 10%).

    .venv/bin/python benchmarks/train_speed.py                       # all families, volume slices
    .venv/bin/python benchmarks/train_speed.py --kind image --size 160 --channels 3 --models resunet

`--choices` instead prints what the default run's training budget was chosen from: the process CPU time of
one bare training step (one torch thread, so load from other processes barely moves it) of each family as
config/full.yaml builds it (the study's encoders) and as config/config.yaml builds it (the laptop
encoders), at each `--sizes` patch size, side by side, plus the CPU seconds of one training job's process
start (importing torch, smp and the training code), which every job pays once.

    .venv/bin/python benchmarks/train_speed.py --choices --sizes 64 96
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from lesionbench.io.cases import Case, save_case
from lesionbench.models import build_model
from lesionbench.training import Augmentation, SliceSampler, resolve_training_config, train_step
from lesionbench.training.optim import make_scheduler

ROOT = Path(__file__).resolve().parents[1]


def make_cases(root: Path, kind: str, size: int, channels: int, n: int = 6) -> list[str]:
    """Prepared cases like the synthetic defaults: volumes of 20 slices or 2D images, a few disc lesions."""
    rng = np.random.default_rng(0)
    shape = (20, size, size) if kind == "volume" else (size, size)
    ids = []
    for i in range(n):
        image = rng.normal(0, 1, (channels,) + shape).astype(np.float32)
        mask = np.zeros(shape, np.uint8)
        yy, xx = np.mgrid[:size, :size]
        for _ in range(4):
            cy, cx, r = rng.integers(8, size - 8), rng.integers(8, size - 8), rng.integers(2, 6)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            if kind == "volume":
                k = rng.integers(2, 18)
                mask[k - 2 : k + 2][:, disc] = 1
            else:
                mask[disc] = 1
        image[:, mask.astype(bool)] += 2.0
        ids.append(f"case{i:02d}")
        save_case(Case(ids[-1], image, mask, (1.0,) * len(shape)), root)
    return ids


def bare_setup(model_name, model_cfg, channels, size, batch, lr):
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    model = build_model(model_name, model_cfg, channels).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    dice, bce = smp.losses.DiceLoss("binary", from_logits=True), torch.nn.BCEWithLogitsLoss()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, size, size, generator=g)
    y = (torch.rand(batch, 1, size, size, generator=g) > 0.97).float()

    def step():
        logits = model(x)
        loss = dice(logits, y) + bce(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def ours_setup(model_name, model_cfg, sampler, cfg, steps_total):
    torch.manual_seed(0)
    model = build_model(model_name, model_cfg, sampler.channels).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = make_scheduler(opt, max(1, steps_total // 10), steps_total + 1, cfg["min_lr_ratio"])
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    rng = np.random.default_rng(0)
    dev = torch.device("cpu")

    def step():
        return train_step(model, opt, sched, scaler, sampler, rng, cfg["batch_size"], dev, False, cfg["loss"])[0]

    return step


def timed(step, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def cpu_ms_per_step(step, n: int) -> float:
    """Median process CPU time of ``n`` steps after two warm-up steps, in ms."""
    step(), step()
    times = []
    for _ in range(n):
        t0 = time.process_time()
        step()
        times.append(time.process_time() - t0)
    return 1000 * statistics.median(times)


def import_cpu_seconds() -> float:
    """CPU seconds a fresh interpreter spends importing what a training job imports (its fixed cost)."""
    code = "import time, lesionbench.training, segmentation_models_pytorch; print(time.process_time())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def choices(args, batch: int, lr: float) -> None:
    """The per-step CPU cost of every family: study encoders against laptop encoders, per patch size."""
    full = yaml.safe_load((ROOT / "config" / "full.yaml").read_text())["models"]
    laptop = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["models"]
    print(f"bare training step, batch {batch}, {args.channels} channel(s), 1 thread: CPU ms, median of {args.steps}")
    print(f"process start of a training job: {import_cpu_seconds():.2f} CPU s")
    header = f"{'model':<20} {'full encoder':<16} {'laptop encoder':<20}"
    header += "".join(f" {'full ' + str(s):>9} {'laptop ' + str(s):>10} {'ratio':>6}" for s in args.sizes)
    print(header)
    for name in args.models:
        row = f"{name:<20} {full[name]['encoder']:<16} {laptop[name]['encoder']:<20}"
        for size in args.sizes:
            ms = [
                cpu_ms_per_step(bare_setup(name, cfg[name], args.channels, size, batch, lr), args.steps)
                for cfg in (full, laptop)
            ]
            row += f" {ms[0]:>9.0f} {ms[1]:>10.0f} {ms[1] / ms[0]:>6.2f}"
        print(row, flush=True)


def main(argv=None):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=sorted(config["models"]))
    ap.add_argument("--kind", choices=["volume", "image"], default="volume")
    ap.add_argument("--size", type=int, default=None, help="input size (default: training.input_size)")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: training.batch_size)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps of each loop")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--choices", action="store_true", help="study against laptop encoders, CPU time per step")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 96], help="patch sizes of --choices")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = resolve_training_config(config["training"])
    size = args.size or cfg["input_size"]
    cfg["batch_size"] = args.batch or cfg["batch_size"]
    if args.choices:
        torch.set_num_threads(1)
        choices(args, cfg["batch_size"], cfg["lr"])
        return
    print(
        f"{args.kind} inputs {args.channels}x{size}x{size}, batch {cfg['batch_size']}, {args.threads} thread(s), "
        f"{args.steps} alternating steps, torch {torch.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        ids = make_cases(Path(tmp), args.kind, size, args.channels)
        aug = cfg["augmentation"]
        sampler = SliceSampler(
            tmp,
            ids,
            size,
            cfg["foreground_slice_ratio"],
            Augmentation(aug["flip"], aug["rot90"], float(aug["intensity"])),
        )
        rng = np.random.default_rng(1)
        t0 = time.perf_counter()
        for _ in range(50):
            sampler.batch(cfg["batch_size"], rng)
        print(f"(sampling + augmentation alone: {1000 * (time.perf_counter() - t0) / 50:.2f} ms per batch)")
        print(f"{'model':<20} {'bare img/s':>11} {'lesionbench img/s':>18} {'overhead':>9}")
        for name in args.models:
            model_cfg = config["models"][name]
            bare = bare_setup(name, model_cfg, args.channels, size, cfg["batch_size"], cfg["lr"])
            ours = ours_setup(name, model_cfg, sampler, cfg, args.steps + 1)
            bare(), ours()  # warm-up (allocator, first-call overheads)
            t_bare, t_ours = [], []
            for _ in range(args.steps):  # alternate step by step: both see the same load
                t_bare += timed(bare, 1)
                t_ours += timed(ours, 1)
            mb, mo = statistics.median(t_bare), statistics.median(t_ours)
            print(
                f"{name:<20} {cfg['batch_size'] / mb:>11.2f} {cfg['batch_size'] / mo:>18.2f} "
                f"{100 * (mo - mb) / mb:>8.1f}%",
                flush=True,
            )


if __name__ == "__main__":
    main()
