"""Where the workflow is: the checkout this library sits in, or the copy a wheel installs inside the package.

A checkout keeps its layout (``Snakefile``, ``workflow/``, ``scripts/``, ``config/``, ``envs/`` beside
``src/lesionbench``). A wheel (``pip install <checkout or git URL>``) carries the same parts under
``lesionbench/workflow_files/`` (``setup.py`` copies them at build time), so ``lesionbench compare`` runs from
any directory. Stdlib only: the Snakefile's own copy of this logic must not need the library on the path.
"""

from __future__ import annotations

from pathlib import Path

# The parts of the workflow a run needs besides the library, as a checkout holds them.
WORKFLOW_PARTS = ("Snakefile", "workflow", "scripts", "config", "envs")
# The folder of the installed package that holds those parts.
PACKAGED = "workflow_files"


def workflow_root() -> Path:
    """The folder holding the Snakefile this library runs: the installed copy, else the checkout."""
    package = Path(__file__).resolve().parent
    installed = package / PACKAGED
    if (installed / "Snakefile").is_file():
        return installed
    checkout = package.parents[1]
    if (checkout / "Snakefile").is_file() and (checkout / "src" / "lesionbench").is_dir():
        return checkout
    raise FileNotFoundError(
        f"{package}: no workflow beside this lesionbench package (neither {installed}/Snakefile nor a checkout "
        f"around it); reinstall with `pip install <checkout or git URL>`"
    )
