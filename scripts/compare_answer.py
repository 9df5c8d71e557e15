"""Rule answer: the answer tables the report opens on and the text printed at the end of a run."""

import pandas as pd

from lesionbench.compare.answer import write_answer
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]) as log:
    sm = snakemake
    datasets = pd.read_csv(sm.input.datasets, dtype={"dataset": str})
    text = write_answer(
        sm.input.overall,
        sm.input.small,
        sm.input.claim,
        sm.input.robustness,
        sm.output.models,
        sm.output.verdict,
        sm.output.display,
        sm.output.text,
        sm.params.report,
        dict(zip(datasets["dataset"], datasets["n_test_cases"].astype(int))),
    )
    log.info("\n%s", text)
