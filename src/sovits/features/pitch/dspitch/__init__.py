"""DiffSinger pitch (`dspitch`): SOME's notes + an OpenUTAU DiffSinger pitch model as an
f0 source.

Modules (onnxruntime is imported only when a model is loaded):

* `bank`: the `pretrain/ds_enhance` folder: lookup, dsconfig, phonemes, languages,
  speaker embeddings, SOME, and the one-line errors for missing files;
* `notes`: pure note / frame arithmetic (durations, rests, word division, grids);
* `graphs`: onnxruntime sessions fed by the inputs each graph declares;
* `models`: the SOME runner and the linguistic + pitch predictor;
* `blend`: keeping or mixing in the source singer's own f0;
* `extractor`: `DsPitchExtractor`, registered as the f0 method "dspitch".
"""

from __future__ import annotations

__all__ = ["DsPitchExtractor"]

from sovits.features.pitch.dspitch.extractor import DsPitchExtractor
