"""Dataset preparation: from the user's raw recordings to clean training clips.

`sovits.data.prepare` runs the dataset steps over a folder tree (resample, slice) and
reports every file it could not use instead of stopping; `sovits.data.qc` measures a
prepared dataset (clip lengths, clipping, silence, f0 range per speaker) and writes a
text and PNG report. Importing this package imports none of them.
"""
