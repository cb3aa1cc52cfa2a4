"""Signal processing shared by every part of sovits.

The one implementation of: f0 scales and clean-up (`sovits.dsp.f0`), unit-to-frame
alignment (`sovits.dsp.alignment`), the volume envelope (`sovits.dsp.volume`) and the
STFT / spectrogram / mel filterbank (`sovits.dsp.spectrogram`).
"""
