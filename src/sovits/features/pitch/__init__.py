"""Pitch (f0) extractors behind one protocol: wave, sample rate, hop -> PitchTrack."""
