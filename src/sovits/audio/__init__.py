"""Audio files and whole-signal operations, below the features and the models.

Reading and writing files (`sovits.audio.io`), sample-rate conversion
(`sovits.audio.resample`), BS.1770 loudness and true peak (`sovits.audio.loudness`),
the silence slicer of audio-slicer / so-vits-svc (`sovits.audio.slicer`) and the
crossfade join of converted chunks (`sovits.audio.join`). Importing this package
imports none of them.
"""
