"""Conversion with a speaker-mix track (-usm) and with an exported ONNX model.

The track's weights are tested against the original's numbers in
tests/inference/test_speaker_mix.py; here: every model call gets its own rows of the
track, the running frame advances over silences, and a one-speaker track equals that
speaker's plain conversion. The ONNX path: an exported graph converts through the same
Converter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sovits.inference.converter import Converter, output_name
from sovits.inference.options import ConvertOptions
from tests.inference.test_converter import MODEL_DIR, RATE, spectral_config, tone


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return spectral_config(tmp_path_factory.mktemp("mix"))


@pytest.fixture(scope="module")
def converter(config_path: Path) -> Converter:
    return Converter(MODEL_DIR / "G_0_release.pth", config_path, device="cpu")


def _track(folder: Path, data: dict[str, Any]) -> Path:
    path = folder / "spkmix.json"
    path.write_text(json.dumps(data))
    return path


def _speakers_seen(converter: Converter, options: ConvertOptions, wave: np.ndarray,
                   monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, list[torch.Tensor]]:
    seen: list[torch.Tensor] = []
    infer = converter.synthesizer.infer  # type: ignore[union-attr]

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["speaker"].clone())
        return infer(*args, **kwargs)

    monkeypatch.setattr(converter.synthesizer, "infer", spy)
    audio = converter.convert(wave, RATE, options=options)
    monkeypatch.undo()
    return audio, seen


def test_each_call_gets_its_frames_of_the_track(
    converter: Converter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extras = Path(__file__).resolve().parents[1] / "fixtures" / "sovits41-extras"
    track = extras / "spkmix" / "spk_mix_map_example.json"
    # sound converted in forced clips, each a model call with its own frames
    wave = np.concatenate([tone(0.4), np.zeros(int(0.2 * RATE), np.float32), tone(0.8)])
    options = ConvertOptions(speaker="mix", use_speaker_mix=True, speaker_mix_path=track,
                             clip_seconds=0.5)
    audio, seen = _speakers_seen(converter, options, wave, monkeypatch)
    assert audio.shape == wave.shape and np.isfinite(audio).all()
    assert len(seen) == 3
    for weights in seen:
        assert weights.dtype == torch.float32 and weights.shape[1] == 3
        torch.testing.assert_close(weights.sum(1), torch.ones(weights.shape[0]))
    # the track starts equal (1/3 each) and moves from call to call
    torch.testing.assert_close(seen[0][0], torch.full((3,), 1 / 3))
    assert not torch.allclose(seen[0].mean(0), seen[2].mean(0), atol=1e-3)
    # each call continues where the last ended (the running frame)
    torch.testing.assert_close(seen[1][0], seen[0][-1], atol=2e-3, rtol=0)
    assert output_name("song", options).startswith("song_0key_spk_mix_sovits")


def test_a_one_speaker_track_equals_that_speaker(
    converter: Converter, tmp_path: Path
) -> None:
    only_b = {"0": [[0, 1, 0, 0]], "1": [[0, 1, 1, 1]], "2": [[0, 1, 0, 0]]}
    options = ConvertOptions(speaker="mix", use_speaker_mix=True,
                             speaker_mix_path=_track(tmp_path, only_b))
    wave = tone(0.7)
    mixed = converter.convert(wave, RATE, options=options)
    plain = converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_b"))
    np.testing.assert_allclose(mixed, plain, atol=1e-4)


def test_a_bad_track_is_refused_before_converting(converter: Converter, tmp_path: Path) -> None:
    from sovits.errors import InputError

    two_speakers = {"0": [[0, 1, 1, 1]], "1": [[0, 1, 0, 0]]}
    options = ConvertOptions(speaker="mix", use_speaker_mix=True,
                             speaker_mix_path=_track(tmp_path, two_speakers))
    with pytest.raises(InputError):
        converter.convert(tone(0.3), RATE, options=options)


def test_an_exported_onnx_model_converts(config_path: Path, tmp_path: Path) -> None:
    from sovits.tools.onnx_export import export_onnx

    graph = export_onnx(MODEL_DIR / "G_0_release.pth", config_path, tmp_path / "model.onnx")
    onnx_converter = Converter(graph, config_path, device="cpu")
    wave = tone(0.5)
    audio = onnx_converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_b"))
    assert audio.shape == wave.shape and np.isfinite(audio).all() and np.abs(audio).max() > 0
