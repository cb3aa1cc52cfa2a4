"""A noise gate for live conversion that is safe for singing.

The model turns room noise into a hiss or a hum, so live conversion passes silence
through as silence. A speech VAD alone is no good for this: it drops most of a held
sung note. `SingingGate` judges every model frame by three things together:

* loudness: the frame's RMS must be above `GateSettings.silence_db` (true silence and
  quiet room noise stay below it, so they close the gate whatever else says);
* pitch confidence: a frame the f0 extractor finds voiced is sound (a held note is
  voiced from its first frame to its last);
* voice activity: silero-vad's speech probability (`sovits.features.vad`) catches the
  unvoiced parts of singing (consonants, breaths) that have no pitch.

A frame is active when it is loud and (voiced or speech). The gate opens on the first
active frame and stays open for `hangover_seconds` after the last one, so short dips
inside a phrase never cut it; gains ramp over one frame at each change, so opening and
closing do not click.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sovits.errors import InputError

__all__ = ["GateSettings", "SingingGate"]


@dataclass(frozen=True)
class GateSettings:
    """silence_db: RMS floor per frame, dBFS; vad_threshold: speech probability above
    which an unvoiced loud frame counts as voice; hangover_seconds: time the gate stays
    open after the last active frame; use_vad: False judges by loudness and pitch only."""

    silence_db: float = -50.0
    vad_threshold: float = 0.5
    hangover_seconds: float = 0.5
    use_vad: bool = True

    def __post_init__(self) -> None:
        if not -120.0 <= self.silence_db <= 0.0:
            raise InputError(f"gate silence level must be in -120..0 dBFS, got {self.silence_db}")
        if not 0.0 <= self.vad_threshold <= 1.0:
            raise InputError(f"VAD threshold must be in [0, 1], got {self.vad_threshold}")
        if not 0.0 <= self.hangover_seconds <= 10.0:
            raise InputError(f"gate hangover must be in 0..10 s, got {self.hangover_seconds}")


class SingingGate:
    """The gate of one stream at `sample_rate` Hz with frames of `hop` samples.

    Feed every input sample with `push` (in order); ask `decide` for the gains of the
    frames as they are rendered (in order, each frame once); `gain` reads them back.
    """

    def __init__(self, sample_rate: int, hop: int, settings: GateSettings):
        self.settings = settings
        self.sample_rate = sample_rate
        self.hop = hop
        self._pending = np.zeros(0, np.float32)
        self._rms_db: list[float] = []  # per complete input frame
        self._vad_frames: list[float] = []  # speech probability per complete frame
        self._gains: list[float] = []  # decided frames
        self._hold = 0  # frames the gate stays open without activity
        self._hangover = round(settings.hangover_seconds * sample_rate / hop)
        self._vad = None
        self._resampler = None
        self._vad_probs: list[float] = []
        if settings.use_vad:
            import soxr

            from sovits.features.vad import VAD_RATE, SileroVad

            self._vad = SileroVad()
            self._resampler = soxr.ResampleStream(sample_rate, VAD_RATE, 1, dtype="float32")

    @property
    def frames_seen(self) -> int:
        """Complete input frames measured so far."""
        return len(self._rms_db)

    @property
    def frames_decided(self) -> int:
        return len(self._gains)

    def push(self, samples: np.ndarray) -> None:
        """Measure new input samples (float32 [N], the stream's rate)."""
        from sovits.features.vad import VAD_CHUNK, VAD_RATE

        block = np.asarray(samples, np.float32)
        if self._vad is not None and self._resampler is not None:
            self._vad_probs.extend(self._vad.push(self._resampler.resample_chunk(block)).tolist())
        data = np.concatenate([self._pending, block])
        count = data.shape[0] // self.hop
        if count:
            frames = data[: count * self.hop].reshape(count, self.hop).astype(np.float64)
            rms = np.sqrt(np.mean(frames**2, axis=1))
            self._rms_db.extend((20 * np.log10(np.maximum(rms, 1e-10))).tolist())
        self._pending = data[count * self.hop :]
        # Speech probability of each frame: its 32 ms chunk, or the latest one known.
        seconds_per_chunk = VAD_CHUNK / VAD_RATE
        while len(self._vad_frames) < len(self._rms_db):
            index = len(self._vad_frames)
            if not self._vad_probs:
                self._vad_frames.append(0.0)
                continue
            chunk = int((index + 0.5) * self.hop / self.sample_rate / seconds_per_chunk)
            self._vad_frames.append(self._vad_probs[min(chunk, len(self._vad_probs) - 1)])

    def loud(self, start: int, end: int) -> bool:
        """Whether any measured frame in [start, end) is above the silence level, or the
        gate is still held open."""
        if self._hold > 0:
            return True
        levels = self._rms_db[start:end]
        return any(level > self.settings.silence_db for level in levels)

    def decide(self, end: int, voiced: np.ndarray | None) -> None:
        """Decide the frames from `frames_decided` up to `end` (all measured).

        voiced: bool per frame for [frames_decided, end), or None when no pitch was
        taken (then loudness and VAD judge alone).
        """
        start = len(self._gains)
        if end > len(self._rms_db):
            raise ValueError(f"frame {end} is not measured yet ({len(self._rms_db)} are)")
        for frame in range(start, end):
            loud = self._rms_db[frame] > self.settings.silence_db
            is_voiced = voiced is not None and bool(voiced[frame - start])
            speech = self._vad is not None and self._vad_frames[frame] > self.settings.vad_threshold
            if loud and (is_voiced or speech or (self._vad is None and voiced is None)):
                self._hold = self._hangover + 1
            if self._hold > 0:
                self._hold -= 1
                self._gains.append(1.0)
            else:
                self._gains.append(0.0)

    def gain(self, start: int, end: int) -> np.ndarray:
        """Gains [end - start] of decided frames (0 before the stream's start)."""
        out = np.zeros(end - start, np.float32)
        low = max(start, 0)
        high = min(end, len(self._gains))
        if high > low:
            out[low - start : high - start] = self._gains[low:high]
        return out

    def sample_gains(self, start: int, end: int, first_sample: int, count: int) -> np.ndarray:
        """Per-sample gains [count] of samples [first_sample, first_sample + count), from
        the decided frames [start, end) that cover them, ramped linearly over one frame
        at each change (the ramp ends where the frame's gain begins)."""
        frames = self.gain(start - 1, end)
        per_sample = np.repeat(frames[1:], self.hop)
        ramp = np.repeat(frames[:-1], self.hop)  # previous frame's gain, per sample
        weights = np.tile(np.linspace(0.0, 1.0, self.hop, endpoint=False), end - start)
        smooth = ramp + (per_sample - ramp) * weights
        offset = first_sample - start * self.hop
        out = np.zeros(count, np.float32)
        low, high = max(offset, 0), min(offset + count, smooth.shape[0])
        if high > low:
            out[low - offset : high - offset] = smooth[low:high]
        return out
