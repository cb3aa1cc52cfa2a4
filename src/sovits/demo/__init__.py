"""The self-contained demo: a synthetic two-singer dataset, its metrics and its report.

`singer` synthesizes singing with a source-filter model (no downloads, no recordings);
`report` draws the demo's F0 and spectrogram picture as a PNG without a plotting
library. The metrics the demo prints live in `sovits.evaluation`.
"""
