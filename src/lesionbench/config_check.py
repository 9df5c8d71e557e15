"""Checks of the run configuration made when Snakemake reads it, before any job runs.

Two calls from the workflow (docs/reliability.md):

- :func:`check_config_keys` (Snakefile, before the schema validation): every key must be one the schema
  declares, at every level. The message names the key's full path, the config files read, the keys allowed
  there and the closest match, instead of the schema dump Snakemake would print.
- :func:`check_run_config` (workflow/rules/common.smk, after it): what the schema cannot express. A label
  may not be both lesion and ignore; every model entry must be buildable (its family's rules, an encoder
  segmentation-models-pytorch or timm knows, a known architecture) and take each data set's training
  ``input_size`` (divisible by its encoder stride); every ``external_models`` folder must exist for every
  data set (and name ``{dataset}`` when there are several); there must be a model to evaluate, and an
  evaluation-only data set (``split.all_test``) takes external models only.

Both are cheap (no torch import; a few tens of milliseconds) because they run on every Snakemake call.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """The run configuration is invalid; the message names the key, the value and the fix."""


def _where(files: Iterable) -> str:
    files = [str(f) for f in files or ()]
    return f"config files read: {', '.join(files)}" if files else "no config file (only --config)"


def unknown_keys(config: dict, schema: dict) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(path of the parent, unknown key, keys allowed there)`` for every key the schema does not declare."""
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    found: set[tuple[str, str, tuple[str, ...]]] = set()
    for error in validator.iter_errors(config):
        if error.validator != "additionalProperties" or error.validator_value is not False:
            continue
        schema_here = error.schema if isinstance(error.schema, dict) else {}
        allowed = tuple(sorted(schema_here.get("properties", {})))
        parent = ".".join(str(p) for p in error.absolute_path)
        for key in set(error.instance) - set(allowed):
            found.add((parent, str(key), allowed))
    return sorted(found)


def check_config_keys(config: dict, schema_path: str | os.PathLike, config_files: Iterable = ()) -> None:
    """Refuse keys the schema does not declare (a misspelled key would otherwise be ignored silently)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    problems = []
    for parent, key, allowed in unknown_keys(config, schema):
        close = difflib.get_close_matches(key, allowed, n=1)
        full = f"{parent}.{key}" if parent else key
        problems.append(f"unknown key `{full}`" + (f" (did you mean `{close[0]}`?)" if close else "")
                        + f"; keys allowed {'in `' + parent + '`' if parent else 'at the top level'}: "
                        + ", ".join(allowed))
    if problems:
        raise ConfigError(f"invalid configuration ({_where(config_files)}):\n  - " + "\n  - ".join(problems)
                          + "\nFix or remove these keys; every key is described in config/README.md.")


def _model_set_problems(config: dict, datasets: dict) -> list[str]:
    """Evaluation-only data sets (``split.all_test``) have no training cases, so only external models can be
    scored on them; there must be some model; with several data sets each external folder needs ``{dataset}``."""
    problems = []
    trained = sorted(config.get("models") or {})
    externals = config.get("external_models") or {}
    evaluation_only = sorted(n for n, ds in datasets.items() if (ds.get("split") or {}).get("all_test"))
    if not trained and not externals:
        problems.append("no model to evaluate; configure `models` (trained here) or `external_models`")
    if evaluation_only and trained:
        problems.append(f"data sets {evaluation_only} are evaluation-only (split.all_test: every case is a test "
                        f"case) but models {trained} would be trained on them; set `models: {{}}` and list "
                        f"predictions under `external_models`, or give these data sets a train/val split")
    shared = sorted(m for m, folder in externals.items() if "{dataset}" not in str(folder))
    if len(datasets) > 1 and shared:
        problems.append(f"external_models {shared} have no {{dataset}} placeholder in their folder, but "
                        f"{len(datasets)} data sets are configured (each needs its own predictions)")
    return problems


def check_run_config(config: dict, config_files: Iterable = (), workdir: str | os.PathLike = ".") -> None:
    """Check what the schema cannot: label lists, model construction and input sizes, external folders."""
    from .models import ModelConfigError, check_input_size, check_model_config
    from .training.config import TrainingConfigError, resolve_training_config

    problems: list[str] = []
    datasets = config.get("datasets") or {}
    for name, ds in sorted(datasets.items()):
        labels = ds.get("labels") or {}
        both = sorted(set(labels.get("lesion") or ()) & set(labels.get("ignore") or ()))
        if both:
            problems.append(f"datasets.{name}.labels: {both} in both lesion {labels.get('lesion')} and ignore "
                            f"{labels.get('ignore')}; a label value is either lesion or ignored, remove it from "
                            f"one list")
    models = {}
    for name, cfg in sorted((config.get("models") or {}).items()):
        try:
            models[name] = check_model_config(name, cfg)
        except ModelConfigError as exc:
            problems.append(f"models.{name}: {exc}")
    for ds_name, ds in sorted(datasets.items()):
        try:
            training = resolve_training_config(config.get("training"), ds.get("training"),
                                               where=f"datasets.{ds_name}.training")
        except TrainingConfigError as exc:
            problems.append(str(exc))
            continue
        for name, cfg in models.items():
            try:
                check_input_size(name, cfg, training["input_size"])
            except ModelConfigError as exc:
                problems.append(f"data set {ds_name!r}: {exc}; set training.input_size (or "
                                f"datasets.{ds_name}.training.input_size) to a multiple of it")
    problems += _model_set_problems(config, datasets)
    for name, pattern in sorted((config.get("external_models") or {}).items()):
        for ds_name in sorted(datasets):
            folder = Path(workdir) / str(pattern).format(dataset=ds_name)
            if not folder.is_dir():
                problems.append(f"external_models.{name}: folder {folder} (data set {ds_name!r}) does not exist; "
                                f"put the model's predictions there, one file per test case (docs/contracts.md), "
                                f"or remove the entry")
    if problems:
        raise ConfigError(f"invalid configuration ({_where(config_files)}):\n  - " + "\n  - ".join(problems))
