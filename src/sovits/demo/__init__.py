"""The self-contained demo: a synthetic two-singer dataset, its metrics and its report.

`singer` synthesizes singing with a source-filter model (no downloads, no recordings);
`pipeline` runs the whole demo; `report` draws its picture (F0 curves, spectrograms,
measures) with `sovits.evaluation.plots`. The measures live in `sovits.evaluation`.
"""
