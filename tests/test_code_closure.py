"""Rerun tracking by construction: each rule's `code` input is the import closure of its script.

`lesionbench.code_closure.import_closure` is checked on a hand-made package whose closure is known, then
every rule of the real workflow is loaded through snakemake's API and its tracked files compared with the
closure of its script (plus the data set's source adapter, which the data stage imports by name). A copy of
the workflow in which one rule omits a file shows that the comparison catches the drift.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT, TINY, copy_workflow
from lesionbench.code_closure import import_closure

PACKAGE = ROOT / "src" / "lesionbench"


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def fake_package(tmp_path):
    pkg = tmp_path / "src" / "lesionbench"
    write(pkg / "__init__.py")
    write(pkg / "a" / "__init__.py")
    write(pkg / "a" / "one.py", "from . import two\nfrom ..c import helper\n")
    write(pkg / "a" / "two.py", "import numpy\n")
    write(pkg / "a" / "unused.py")
    write(pkg / "b" / "__init__.py", "from .inner import thing\n")
    write(pkg / "b" / "inner.py")
    write(pkg / "c.py", "def helper():\n    from lesionbench.d import lazy\n    return lazy\n")
    write(pkg / "d" / "__init__.py")
    write(pkg / "d" / "lazy.py")
    write(pkg / "e.py")
    script = write(tmp_path / "scripts" / "job.py", "from lesionbench.a import one\nimport lesionbench.b\n")
    return pkg, script


def rel(files, pkg):
    return sorted(str(Path(f).relative_to(pkg.resolve())) for f in files)


def test_closure_of_a_hand_made_package(fake_package):
    pkg, script = fake_package
    assert rel(import_closure([script], pkg), pkg) == sorted(
        [
            "__init__.py",
            "a/__init__.py",
            "a/one.py",
            "a/two.py",  # from-import of a submodule, relative import
            "b/__init__.py",
            "b/inner.py",  # package __init__ and what it imports
            "c.py",
            "d/__init__.py",
            "d/lazy.py",  # parent-relative and function-local imports
        ]
    )


def test_closure_includes_library_roots_and_ignores_other_packages(fake_package):
    pkg, _ = fake_package
    assert rel(import_closure([pkg / "e.py"], pkg), pkg) == ["e.py"]
    assert "a/two.py" in rel(import_closure([pkg / "a" / "two.py"], pkg), pkg)  # numpy is not followed


def test_an_edited_module_is_read_again(fake_package):
    """Parsed imports are cached per process (a Snakefile asks for dozens of closures), keyed by the file's
    mtime and size: an edit between two calls is seen."""
    pkg, script = fake_package
    assert "e.py" not in rel(import_closure([script], pkg), pkg)
    two = pkg / "a" / "two.py"
    write(two, "import numpy\nfrom lesionbench import e\n")
    os.utime(two, ns=(two.stat().st_atime_ns, two.stat().st_mtime_ns + 1_000_000_000))
    assert "e.py" in rel(import_closure([script], pkg), pkg)


def test_evaluate_script_tracks_every_io_module_it_reads_with():
    files = rel(import_closure([ROOT / "scripts" / "evaluate.py"], PACKAGE), PACKAGE)
    for needed in (
        "io/predictions.py",
        "io/cases.py",
        "io/images.py",
        "io/tables.py",
        "io/atomic.py",
        "metrics/lesionwise.py",
        "postprocess.py",
    ):
        assert needed in files, needed
    assert "training/loop.py" not in files


# Runs inside a workflow copy: every rule's script and tracked `code` files, per data set.
RULE_CODE_PROBE = r"""
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from types import SimpleNamespace
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

workdir = Path(sys.argv[1]).resolve()
configfiles = [Path(p) for p in sys.argv[2:]]
with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    wf = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=workdir / "Snakefile",
                      config_settings=ConfigSettings(configfiles=configfiles), workdir=workdir)
    workflow = wf._workflow
    datasets = sorted(workflow.config["datasets"])
    rules = {}
    for rule in workflow.rules:
        if rule.script is None:
            continue
        names = rule.input._names
        entry = {"script": Path(rule.script).name, "code": None}
        if "code" in names:
            start, end = names["code"]
            items = list(rule.input[start:end])
            per_dataset = {}
            for name in datasets:
                wildcards = SimpleNamespace(dataset=name, model="m", seed="0")
                files = []
                for item in items:
                    value = item(wildcards) if callable(item) else item
                    files += [str(v) for v in (value if isinstance(value, list) else [value])]
                per_dataset[name] = sorted(files)
            entry["code"] = per_dataset
        rules[rule.name] = entry
    print(json.dumps({"sources": {n: workflow.config["datasets"][n]["source"] for n in datasets},
                      "rules": rules}))
"""


def rule_code(workdir: Path, configfiles=()):
    env = dict(os.environ, PYTHONPATH=str(workdir / "src"))
    proc = subprocess.run(
        [sys.executable, "-c", RULE_CODE_PROBE, str(workdir), *map(str, configfiles)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def code_mismatches(workdir: Path, configfiles=()):
    """{rule: problem} for every rule whose tracked code differs from its script's import closure."""
    probe = rule_code(workdir, configfiles)
    package = workdir / "src" / "lesionbench"
    problems = {}
    for name, entry in probe["rules"].items():
        if entry["code"] is None:
            problems[name] = "no `code` input"
            continue
        for dataset, tracked in entry["code"].items():
            roots = [workdir / "scripts" / entry["script"]]
            if name in {"acquire", "prepare"}:  # the data stage imports the source adapter by name
                roots.append(package / "data" / "sources" / f"{probe['sources'][dataset]}.py")
            expected = import_closure(roots, package)
            resolved = sorted(str(Path(f).resolve()) for f in tracked)
            if resolved != expected:
                missing = sorted(set(expected) - set(resolved))
                extra = sorted(set(resolved) - set(expected))
                problems[name] = f"{dataset}: missing {missing}, extra {extra}"
    return problems


def test_source_adapters_live_where_the_workflow_looks_for_them():
    from lesionbench.data.sources import ADAPTERS

    for source, module in ADAPTERS.items():
        assert module == f"lesionbench.data.sources.{source}"
        assert (PACKAGE / "data" / "sources" / f"{source}.py").is_file()


def test_every_rule_tracks_exactly_its_scripts_import_closure(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    assert code_mismatches(workdir) == {}
    assert code_mismatches(workdir, [workdir / "config" / "config.yaml", TINY]) == {}


def test_a_rule_that_omits_a_file_is_caught(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    rules = workdir / "workflow" / "rules" / "evaluate.smk"
    text = rules.read_text()
    assert 'code=script_code("evaluate.py"),' in text
    rules.write_text(
        text.replace(
            'code=script_code("evaluate.py"),',
            'code=[f for f in script_code("evaluate.py") if not f.endswith("io/predictions.py")],',
        )
    )
    problems = code_mismatches(workdir)
    assert set(problems) == {"evaluate"}
    assert "io/predictions.py" in problems["evaluate"]
