"""Train one model of one data set with one seed: the protocol of docs/models.md.

Outputs in ``out_dir`` (all written atomically):
- ``best.pt``: weights of the epoch with the best validation Dice, plus what inference needs to rebuild
  the model (family, model config, in_channels, input size, divisor, training mode);
- ``last.pt``: everything needed to resume, written after every epoch: model, optimizer, scheduler,
  AMP scaler, RNG states, completed epochs, best Dice so far, early-stopping counter, the log so far
  (without the wall-clock seconds, so identical runs write byte-identical checkpoints);
- ``train_log.csv``: ``epoch, train_loss, val_dice, lr, seconds`` (one row per completed epoch);
- ``config.json``: the resolved training config, model config, data set, seed and device.

Determinism: the model is initialised from ``torch.manual_seed(seed)``; the batches and augmentations of
epoch ``e`` come from ``numpy.random.default_rng([seed, e])`` and torch's global RNG (stochastic depth)
is reseeded from ``(seed, e)``, so a resumed run replays exactly the batches an uninterrupted run sees
and ends with identical weights (same device and thread count).

Resuming: a run starts from ``last.pt`` when it holds the same fingerprint (data set, split, model,
resolved protocol, seed, training code). Snakemake deletes a job's declared outputs before re-running it,
so ``last.pt`` and ``best.pt`` are also hard-linked (copied where links are unsupported) into the hidden
folder ``.resume/`` beside them; those links survive, let an interrupted job continue (restoring the two
files), and are removed when training ends.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import pickle
import shutil
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..io.atomic import atomic_path, write_bytes, write_csv, write_json
from ..io.cases import load_case
from ..models import build_model, check_input_size, check_model_config, input_divisor
from .config import INFERENCE_RESULT_KEYS, resolve_inference_config, resolve_training_config
from .optim import dice_bce_loss, make_scheduler
from .sampling import Augmentation, SliceSampler, TrainingDataError, read_split
from .transforms import predict_probabilities

log = logging.getLogger("lesionbench.training")

CHECKPOINT_FORMAT = 1
LOG_COLUMNS = ["epoch", "train_loss", "val_dice", "lr", "seconds"]
RESUME_DIR = ".resume"


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` = CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch sees no CUDA device")
    return torch.device(device)


def set_determinism(enabled: bool) -> None:
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def code_fingerprint() -> str:
    """Hash of the code that decides the trained weights (this package and the model registry)."""
    here = Path(__file__).resolve().parent
    files = sorted(here.glob("*.py")) + [here.parent / "models.py"]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:16]


def epoch_seeds(seed: int, epoch: int) -> tuple[np.random.Generator, int]:
    """The sampling generator and torch seed of one epoch, fixed by (seed, epoch)."""
    ss = np.random.SeedSequence([int(seed), int(epoch)])
    torch_seed = int(ss.spawn(1)[0].generate_state(1, dtype=np.uint64)[0] % (2**63))
    return np.random.default_rng(ss), torch_seed


def overlap_counts(pred: np.ndarray, ref: np.ndarray, ignore: np.ndarray | None = None) -> tuple[int, int]:
    """``(|P & R|, |P| + |R|)`` of two binary masks, ignore voxels excluded."""
    pred, ref = np.asarray(pred, bool), np.asarray(ref, bool)
    if ignore is not None:
        keep = ~np.asarray(ignore, bool)
        pred, ref = pred & keep, ref & keep
    return int((pred & ref).sum()), int(pred.sum()) + int(ref.sum())


def dice_score(pred: np.ndarray, ref: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Dice of two binary masks, ignore voxels excluded; both empty -> 1."""
    inter, total = overlap_counts(pred, ref, ignore)
    return 1.0 if total == 0 else 2.0 * inter / total


def validation_dice(
    model: torch.nn.Module,
    prepared: str | os.PathLike,
    case_ids: list[str],
    input_size: int,
    divisor: int,
    threshold: float,
    device: torch.device,
    batch_size: int = 16,
    amp: bool = False,
    *,
    mode: str = "patch",
    inference: dict | None = None,
) -> float:
    """Dice pooled over all validation voxels: whole images/volumes predicted exactly as at inference
    (:func:`predict_probabilities` with the training ``mode`` and the ``inference`` settings), thresholded
    at ``threshold``; ``2 sum|P & R| / sum(|P| + |R|)`` over the cases (1 when all are empty).

    Pooling keeps model selection stable when validation cases without lesions would otherwise score
    0 or 1 on a single stray voxel."""
    tiling = resolve_inference_config(inference)
    inter = total = 0
    for cid in case_ids:
        case = load_case(prepared, cid, mmap=True)
        prob = predict_probabilities(
            model,
            case.image,
            input_size,
            divisor,
            device,
            batch_size,
            amp,
            mode=mode,
            tile_overlap=tiling["tile_overlap"],
            volume_tile_size=tiling["volume_tile_size"],
        )
        i, t = overlap_counts(prob >= threshold, case.mask, case.ignore)
        inter, total = inter + i, total + t
    return 1.0 if total == 0 else 2.0 * inter / total


class _ValuePickler(pickle.Pickler):
    """A pickler without a memo ("fast" mode): each object is written by value, so the bytes depend only on
    the values, never on which equal objects happen to be shared (a resumed run loads its optimizer's keys
    from the checkpoint as new strings, an uninterrupted run shares interned ones). Checkpoints hold no
    self-referencing objects, which fast mode cannot write."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fast = True


_VALUE_PICKLE = types.ModuleType("lesionbench_value_pickle")
_VALUE_PICKLE.Pickler = _ValuePickler  # type: ignore[attr-defined]  # what torch.save calls


def _save(obj: Any, path: Path) -> None:
    """``torch.save`` to memory, then an atomic write: identical states give byte-identical files.

    Saving to a path would store that path's name (a random temporary one) inside the archive, and
    pickle's memo would make the bytes depend on object identity (see :class:`_ValuePickler`). A full
    disk or a read-only folder raises a :class:`~lesionbench.io.atomic.WriteError` naming ``path``."""
    buffer = io.BytesIO()
    torch.save(obj, buffer, pickle_module=_VALUE_PICKLE)
    write_bytes(buffer.getvalue(), path)


def _link_resume(path: Path) -> None:
    """Keep a second name for ``path`` in ``.resume/`` that outlives Snakemake's removal of declared outputs."""
    with atomic_path(path.parent / RESUME_DIR / path.name, suffix=path.suffix) as tmp:
        tmp.unlink()
        try:
            os.link(path, tmp)
        except OSError:
            shutil.copyfile(path, tmp)


def _restore(out_dir: Path, name: str) -> None:
    """Put ``out_dir/name`` back from its ``.resume/`` link when it was removed."""
    target, saved = out_dir / name, out_dir / RESUME_DIR / name
    if not target.is_file() and saved.is_file():
        with atomic_path(target, suffix=".pt") as tmp:
            shutil.copyfile(saved, tmp)


def _with_seconds(log_rows: list[dict], out_dir: Path) -> list[dict]:
    """The log saved in ``last.pt`` (no wall-clock seconds, so identical runs write identical checkpoints)
    with each epoch's seconds from the kept ``train_log.csv`` (NaN where it is gone)."""
    seconds: dict[int, float] = {}
    for path in (out_dir / RESUME_DIR / "train_log.csv", out_dir / "train_log.csv"):
        if path.is_file():
            try:
                table = pd.read_csv(path)
                seconds = dict(zip(table["epoch"].astype(int), table["seconds"].astype(float)))
                break
            except (ValueError, KeyError, OSError):
                continue
    return [{**r, "seconds": seconds.get(int(r["epoch"]), math.nan)} for r in log_rows]


def _load_resumable(out_dir: Path, fingerprint: dict) -> dict | None:
    for path in (out_dir / "last.pt", out_dir / RESUME_DIR / "last.pt"):
        if not path.is_file():
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a corrupt or foreign file: train from scratch
            log.warning("%s: not resumable (%s: %s); training from scratch", path, type(exc).__name__, exc)
            continue
        if state.get("format") == CHECKPOINT_FORMAT and state.get("fingerprint") == fingerprint:
            log.info("%s: resuming after epoch %d", path, state["epoch"])
            return state
        log.info("%s: different data, config or code; training from scratch", path)
    return None


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    scaler,
    sampler: SliceSampler,
    rng: np.random.Generator,
    batch_size: int,
    device: torch.device,
    amp: bool,
    loss_weights: dict,
) -> tuple[float, float]:
    """One optimizer step on a freshly sampled, augmented batch; returns (loss, learning rate used)."""
    xb, yb = sampler.batch(batch_size, rng)
    x = torch.from_numpy(xb).to(device, non_blocking=True)
    y = torch.from_numpy(yb).to(device, non_blocking=True)
    with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
        logits = model(x)
    loss = dice_bce_loss(logits, y, loss_weights["dice_weight"], loss_weights["bce_weight"])
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    lr = optimizer.param_groups[0]["lr"]
    scheduler.step()
    return float(loss.detach()), lr


def train(
    prepared: str | os.PathLike,
    split_csv: str | os.PathLike,
    out_dir: str | os.PathLike,
    model_name: str,
    model_config: dict,
    training: dict | None = None,
    seed: int = 0,
    device: str = "auto",
    dataset: str = "",
    threads: int | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    inference: dict | None = None,
) -> dict:
    """Train ``model_name`` on the train split of ``prepared`` and select it on the val split.

    ``training`` is the data set's training block (resolved against the defaults here); ``inference`` the
    config's inference block, whose sliding-window settings validation uses as the predict rule does. ``threads``
    overrides ``training.num_threads``. ``stop_after`` ends this call after that many epochs (a later
    call resumes from ``last.pt``). Returns a summary: best validation Dice and epoch, epochs run, whether
    early stopping ended the run.
    """
    out_dir = Path(out_dir)
    where = f"{dataset or Path(prepared).parent.name}/{model_name}/seed{seed}"
    cfg = resolve_training_config(training, where=f"{where}: training")
    tiling = resolve_inference_config(inference, where=f"{where}: inference")
    tiling_used = {k: tiling[k] for k in INFERENCE_RESULT_KEYS}  # what can change the validation Dice
    model_cfg = check_model_config(model_name, model_config)
    check_input_size(model_name, model_cfg, cfg["input_size"])
    torch.set_num_threads(int(threads or cfg["num_threads"]))
    set_determinism(cfg["deterministic"])
    dev = resolve_device(device)
    amp = bool(cfg["amp"]) and dev.type == "cuda"

    split = read_split(split_csv)
    if not split["val"]:
        raise TrainingDataError(f"{split_csv}: the split has no validation cases (needed for model selection)")
    aug = cfg["augmentation"]
    sampler = SliceSampler(
        prepared,
        split["train"],
        cfg["input_size"],
        cfg["foreground_slice_ratio"],
        Augmentation(aug["flip"], aug["rot90"], float(aug["intensity"])),
        mode=cfg["mode"],
    )
    in_channels, ndim = sampler.channels, sampler.ndim
    steps = int(cfg["steps_per_epoch"] or max(1, len(sampler) // cfg["batch_size"]))
    epochs, divisor = int(cfg["epochs"]), input_divisor(model_cfg)

    fingerprint = {
        "dataset": dataset,
        "model": model_name,
        "model_config": model_cfg,
        "seed": int(seed),
        "training": {k: v for k, v in cfg.items() if k != "num_threads"},
        "inference": tiling_used,
        "train_cases": split["train"],
        "val_cases": split["val"],
        "code": code_fingerprint(),
    }
    resolved = {
        "dataset": dataset,
        "model": model_name,
        "model_config": model_cfg,
        "training": cfg,
        "inference": tiling,
        "seed": int(seed),
        "device": device,
        "device_used": str(dev),
        "mixed_precision": amp,
        "in_channels": in_channels,
        "ndim": ndim,
        "input_divisor": divisor,
        "steps_per_epoch": steps,
        "n_train_cases": len(split["train"]),
        "n_val_cases": len(split["val"]),
        "n_train_samples": len(sampler),
        "torch": torch.__version__,
    }
    write_json(resolved, out_dir / "config.json")

    torch.manual_seed(int(seed))
    model = build_model(model_name, model_cfg, in_channels, cfg["encoder_weights"]).to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    scheduler = make_scheduler(optimizer, cfg["warmup_epochs"] * steps, epochs * steps, cfg["min_lr_ratio"])
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    loss_w = cfg["loss"]

    state = _load_resumable(out_dir, fingerprint)
    start, best, best_epoch, bad, stopped, rows = 0, -math.inf, 0, 0, False, []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        if dev.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        start, best, best_epoch = state["epoch"], state["best_dice"], state["best_epoch"]
        bad, stopped, rows = state["bad_epochs"], state["stopped"], _with_seconds(state["log"], out_dir)
    best_info = {
        "format": CHECKPOINT_FORMAT,
        "model_name": model_name,
        "model_config": model_cfg,
        "in_channels": in_channels,
        "ndim": ndim,
        "input_size": cfg["input_size"],
        "input_divisor": divisor,
        "mode": cfg["mode"],
        "dataset": dataset,
        "seed": int(seed),
    }
    if state is not None:
        _restore(out_dir, "last.pt")
        _restore(out_dir, "best.pt")
        if not (out_dir / "best.pt").is_file():
            raise TrainingDataError(
                f"{out_dir}: resuming after epoch {start} but best.pt is missing; "
                f"delete {out_dir / RESUME_DIR} to train from scratch"
            )
    else:
        shutil.rmtree(out_dir / RESUME_DIR, ignore_errors=True)

    log.info(
        "%s: %s on %s (%d train samples, %d val cases), %d epochs x %d steps of %d, threads=%d",
        where,
        model_name,
        dev,
        len(sampler),
        len(split["val"]),
        epochs,
        steps,
        cfg["batch_size"],
        torch.get_num_threads(),
    )
    for ran, epoch in enumerate(range(start, epochs)):  # ran: epochs run by this call
        if stopped or (stop_after is not None and ran >= stop_after):
            break
        t0 = time.perf_counter()
        rng, torch_seed = epoch_seeds(seed, epoch)
        torch.manual_seed(torch_seed)
        model.train()
        total = 0.0
        bar = tqdm(
            range(steps),
            desc=f"{where} epoch {epoch + 1}/{epochs}",
            disable=not progress,
            file=sys.stderr,
            leave=False,
            dynamic_ncols=True,
            mininterval=1.0,
        )
        for _ in bar:
            value, lr = train_step(
                model, optimizer, scheduler, scaler, sampler, rng, cfg["batch_size"], dev, amp, loss_w
            )
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"{where}: training loss became {value} in epoch {epoch + 1}; "
                    f"lower training.lr or check the prepared images"
                )
            total += value
            bar.set_postfix(loss=f"{value:.4f}", refresh=False)
        bar.close()
        val = validation_dice(
            model,
            prepared,
            split["val"],
            cfg["input_size"],
            divisor,
            cfg["val_threshold"],
            dev,
            cfg["val_batch_size"],
            amp,
            mode=cfg["mode"],
            inference=tiling,
        )
        if val > best:
            best, best_epoch, bad = val, epoch + 1, 0
            _save(
                {
                    **best_info,
                    "epoch": epoch + 1,
                    "val_dice": val,
                    "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                },
                out_dir / "best.pt",
            )
            _link_resume(out_dir / "best.pt")
        else:
            bad += 1
        stopped = cfg["patience"] > 0 and bad >= cfg["patience"]
        rows.append(
            {
                "epoch": epoch + 1,
                "train_loss": total / steps,
                "val_dice": val,
                "lr": lr,
                "seconds": round(time.perf_counter() - t0, 3),
            }
        )
        write_csv(pd.DataFrame(rows, columns=LOG_COLUMNS), out_dir / "train_log.csv")
        _link_resume(out_dir / "train_log.csv")
        # Logged before the checkpoint: an epoch a resumed run skips is always in the log of the killed one.
        log.info(
            "%s epoch %d/%d: train_loss %.4f val_dice %.4f lr %.2e (%.1fs)%s",
            where,
            epoch + 1,
            epochs,
            rows[-1]["train_loss"],
            val,
            lr,
            rows[-1]["seconds"],
            f"; early stop, best epoch {best_epoch}" if stopped else "",
        )
        _save(
            {
                "format": CHECKPOINT_FORMAT,
                "fingerprint": fingerprint,
                "epoch": epoch + 1,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": {
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if dev.type == "cuda" else None,
                },
                "best_dice": best,
                "best_epoch": best_epoch,
                "bad_epochs": bad,
                "stopped": stopped,
                "log": [{k: v for k, v in r.items() if k != "seconds"} for r in rows],
            },
            out_dir / "last.pt",
        )
        _link_resume(out_dir / "last.pt")

    finished = stopped or len(rows) >= epochs
    if not (out_dir / "train_log.csv").is_file():  # resumed after Snakemake removed the outputs
        write_csv(pd.DataFrame(rows, columns=LOG_COLUMNS), out_dir / "train_log.csv")
    if finished:
        shutil.rmtree(out_dir / RESUME_DIR, ignore_errors=True)
    return {
        "best_val_dice": best,
        "best_epoch": best_epoch,
        "epochs_run": len(rows),
        "stopped_early": stopped,
        "finished": finished,
    }
