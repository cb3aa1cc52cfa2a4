"""sovits.dsp.volume.volume_envelope against Volume_Extractor(512).extract (helpers.npz)."""

from __future__ import annotations

import pytest
import torch

from sovits.dsp.volume import volume_envelope
from sovits.errors import InputError
from tests.tolerance import INTERMEDIATE, assert_close


@pytest.mark.parametrize("length", [5000, 5120, 12345])
def test_matches_reference(helpers_npz, length: int) -> None:
    wave = torch.from_numpy(helpers_npz[f"volume.in{length}"])
    assert wave.shape == (1, length)
    out = volume_envelope(wave, 512)
    expected = helpers_npz[f"volume.out{length}"]
    assert out.shape == (length // 512,)
    assert_close(out, expected, INTERMEDIATE, what=f"volume.out{length}")
    torch.testing.assert_close(volume_envelope(wave[0], 512), out, rtol=0, atol=0)


def test_constant_signal_has_its_amplitude() -> None:
    out = volume_envelope(torch.full((4 * 64 + 10,), -0.5), 64)
    torch.testing.assert_close(out, torch.full((4,), 0.5))


def test_short_and_bad_input() -> None:
    assert volume_envelope(torch.zeros(100), 512).shape == (0,)
    with pytest.raises(InputError):
        volume_envelope(torch.zeros(2, 1024), 512)
    with pytest.raises(InputError):
        volume_envelope(torch.zeros(1024), 0)
