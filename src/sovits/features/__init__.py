"""Feature extraction: content units (features.content) and pitch (features.pitch) from audio."""
