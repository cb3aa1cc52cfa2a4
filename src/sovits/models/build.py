"""The only place that turns a so-vits-svc config into modules.

Models take plain keyword arguments; this module maps config fields onto them,
including the original's quirks (keys it accepts but ignores).
"""

from __future__ import annotations

from typing import Any

from sovits.config import SvcConfig
from sovits.models.discriminators import MultiPeriodDiscriminator
from sovits.models.synthesizer import Synthesizer

# Keys of the "model" section that the original SynthesizerTrn swallows without effect
# (speech_encoder, speaker_embedding, n_layers_q: enc_q always has 16 layers) or that
# belong to the discriminator.
_NOT_SYNTHESIZER_ARGUMENTS = (
    "speech_encoder",
    "speaker_embedding",
    "use_spectral_norm",
    "n_layers_q",
)


def synthesizer_arguments(config: SvcConfig) -> dict[str, Any]:
    """Keyword arguments of `Synthesizer` for `config` (as SynthesizerTrn receives them)."""
    model = {
        key: value
        for key, value in config.to_dict()["model"].items()
        if key not in _NOT_SYNTHESIZER_ARGUMENTS
    }
    model["spec_channels"] = config.spec_channels
    model["segment_size"] = config.segment_frames
    # The NSF source runs at model.sampling_rate, which configs rarely set: the original
    # then uses 44100 whatever the data rate is.
    model["sampling_rate"] = config.nsf_sampling_rate
    return model


def build_synthesizer(config: SvcConfig) -> Synthesizer:
    """A freshly initialised synthesizer (generator) for `config`, in float32 on CPU."""
    return Synthesizer(**synthesizer_arguments(config))


def build_discriminator(config: SvcConfig) -> MultiPeriodDiscriminator:
    """The multi-period discriminator trained beside the synthesizer."""
    return MultiPeriodDiscriminator(use_spectral_norm=config.model.use_spectral_norm)
