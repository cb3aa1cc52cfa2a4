"""The volume extractor object over `sovits.dsp.volume.volume_envelope`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sovits.dsp.volume import volume_envelope
from sovits.errors import InputError
from sovits.features.volume import VolumeExtractor


def test_numpy_and_torch_input_give_the_envelope() -> None:
    rng = np.random.default_rng(0)
    wave = (0.3 * rng.standard_normal(5000)).astype(np.float32)
    extractor = VolumeExtractor(512)
    expected = volume_envelope(torch.from_numpy(wave), 512)
    from_numpy = extractor.extract(wave.astype(np.float64))
    assert from_numpy.dtype == torch.float32 and from_numpy.shape == (5000 // 512,)
    assert torch.equal(from_numpy, expected)
    assert torch.equal(extractor.extract(torch.from_numpy(wave)[None]), expected)
    # frame 1 is the RMS of samples 256 .. 767 (the reflect padding only touches frame 0)
    assert from_numpy[1].item() == pytest.approx(np.sqrt(np.mean(wave[256:768] ** 2)), rel=1e-5)


def test_bad_input() -> None:
    with pytest.raises(InputError):
        VolumeExtractor(0)
    extractor = VolumeExtractor(160)
    with pytest.raises(InputError, match="floating"):
        extractor.extract(np.zeros(1600, dtype=np.int16))
    with pytest.raises(InputError, match="NaN"):
        extractor.extract(np.full(1600, np.nan, dtype=np.float32))
    with pytest.raises(InputError, match="mono"):
        extractor.extract(torch.zeros(2, 1600))
    assert extractor.extract(np.zeros(100, dtype=np.float32)).shape == (0,)
