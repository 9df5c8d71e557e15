"""Ships the workflow inside the wheel: Snakefile, workflow/, scripts/, config/ and envs/ are copied to
lesionbench/workflow_files/ (lesionbench.resources finds them there), while the checkout keeps them at its top
level. Editable installs run the checkout's own copy, so nothing is copied for them."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PARTS = ("Snakefile", "workflow", "scripts", "config", "envs")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".snakemake")


class BuildWithWorkflow(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "lesionbench" / "workflow_files"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for part in PARTS:
            source = HERE / part
            if source.is_dir():
                shutil.copytree(source, target / part, ignore=SKIP)
            else:
                shutil.copy2(source, target / part)


setup(cmdclass={"build_py": BuildWithWorkflow})
