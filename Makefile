# Two commands on a fresh machine: `make run` (set up, run the default pipeline) and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
CORES   ?= $(shell nproc 2>/dev/null || echo 2)
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.lesionbench-installed

.PHONY: run test test-cluster lint report clean-results setup

setup: $(STAMP)

# The lock pins torch==2.14.1 / torchvision==0.29.1 (see README "Installation"); the project itself is
# installed editable and without dependencies so the lock alone decides every version.
$(STAMP): envs/requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r envs/requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Extra Snakemake arguments for `make run`, e.g. SNAKEMAKE_ARGS="--configfile config/full.yaml".
SNAKEMAKE_ARGS ?=

# After a kill (kill -9, power loss) `make run` resumes by itself: a lock left by a dead Snakemake is
# removed (only when no Snakemake process holds it; lesionbench.runlock says which), and the profile's
# rerun-incomplete re-runs the interrupted jobs; training continues from its last epoch.
# Snakemake's output goes to $(RESULTS)/logs/snakemake.log; the run ends on the answer ($(RESULTS)/answer/
# summary.txt) or on one line naming the failed step and its error (lesionbench.compare.runner).
# RESULTS: the config's `results` folder (change both together).
RESULTS ?= results
run: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m lesionbench.runlock
	@PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m lesionbench.compare.runner $(RESULTS) -- \
		snakemake --workflow-profile workflow/profiles/laptop --cores $(CORES) \
		$(SNAKEMAKE_ARGS) --report $(RESULTS)/report.html --report-after-run

# The suite without side effects on the machine. The SLURM test installs SLURM and MUNGE with apt and starts
# their daemons, so it runs only when asked: `make test-cluster` (CI runs both).
test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -m "not slurm"

test-cluster: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" LESIONBENCH_CLUSTER_TEST=1 $(BIN)/python -m pytest -m slurm tests/test_slurm.py

# Style, types and workflow conventions; CI runs it after the tests.
lint: $(STAMP)
	$(BIN)/ruff check src scripts tests benchmarks
	$(BIN)/ruff format --check src scripts tests benchmarks
	$(BIN)/mypy
	$(BIN)/snakefmt --check Snakefile workflow/Snakefile workflow/rules
	PATH="$(abspath $(BIN)):$$PATH" snakemake --lint

clean-results:
	rm -rf results figures .snakemake
