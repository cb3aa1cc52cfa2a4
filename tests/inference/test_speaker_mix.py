"""Speaker-mix tracks: parity with the weights and per-call slices `Svc.slice_inference`
built (sovits41-extras/spkmix), the track length rule, reading and validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.checkpoints import load_synthesizer
from sovits.errors import InputError
from sovits.inference.speaker_mix import (
    MixSegment,
    SpeakerMixTrack,
    call_weights,
    frame_weights,
    load_speaker_mix_track,
    mix_track_length,
    model_rate_length,
)
from sovits.models.noise import NoiseSource
from tests.conftest import FIXTURES, SOVITS41, load_npz

SPKMIX = FIXTURES / "sovits41-extras" / "spkmix"
EXAMPLE = SPKMIX / "spk_mix_map_example.json"
SPEAKERS = {"spk_a": 0, "spk_b": 1, "spk_c": 2}
RATE, HOP, PAD = 44100, 512, 22050  # fixture: 44.1 kHz input and model, pad 0.5 s


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return load_npz(SPKMIX / "spkmix_fixtures.npz")


def _plan(case: str, audio_len: int) -> list[tuple[int | list[int], bool]]:
    """The slice plan of the fixture cases: one sound slice (whole, or 0.5 s clips)."""
    if case == "single_slice":
        return [(audio_len, False)]
    clip = int(0.5 * RATE)
    clips = [min(clip, audio_len - start) for start in range(0, audio_len, clip)]
    return [(clips, False)]


@pytest.mark.parametrize("case", ["single_slice", "with_silence_and_clips"])
def test_example_track_weights_and_calls_match_the_original(
    arrays: dict[str, np.ndarray], case: str
) -> None:
    track = load_speaker_mix_track(EXAMPLE, speakers=SPEAKERS)
    expected = arrays[f"{case}_weights"]
    length = mix_track_length(
        _plan(case, int(arrays[f"{case}_audio_len"])), pad_samples=PAD, hop_length=HOP
    )
    assert length == expected.shape[1]
    weights = frame_weights(track, length)
    assert weights.dtype == np.float32
    np.testing.assert_array_equal(weights, expected)
    frame = 0
    for index, (start, n_frames) in enumerate(arrays[f"{case}_call_frames"]):
        assert start == frame
        window = call_weights(weights, int(start), int(n_frames))
        np.testing.assert_array_equal(window, arrays[f"{case}_call{index}_sid"])
        frame += int(n_frames)


@pytest.mark.parametrize("case", ["two_spk_constant", "two_spk_crossfade", "zero_sum_region"])
def test_two_speaker_tracks_match_the_original(arrays: dict[str, np.ndarray], case: str) -> None:
    track = SpeakerMixTrack.from_mapping(json.loads(str(arrays[f"{case}_track"])), speakers=2)
    expected = arrays[f"{case}_weights"]
    np.testing.assert_array_equal(frame_weights(track, expected.shape[1]), expected)


def test_zero_columns_become_uniform_and_columns_sum_to_one(
    arrays: dict[str, np.ndarray],
) -> None:
    weights = arrays["zero_sum_region_weights"]
    ours = frame_weights(
        SpeakerMixTrack.from_mapping(json.loads(str(arrays["zero_sum_region_track"])),
                                     speakers=2),
        weights.shape[1],
    )
    assert np.all(ours[:, : weights.shape[1] // 2] == 0.5)
    np.testing.assert_allclose(ours.sum(axis=0), 1.0, atol=1e-6)


def test_track_length_counts_silence_clips_padding_and_one_frame_per_slice() -> None:
    plan: list[tuple[int | list[int], bool]] = [
        (10000, True),  # 10000 // 512 = 19
        (30000, False),  # (30000 + 2 * 1000) // 512 = 62
        ([20000, 5000], False),  # 42 + 13
        (511, True),  # 0
    ]
    assert mix_track_length(plan, pad_samples=1000, hop_length=512) == 19 + 62 + 42 + 13 + 4
    assert model_rate_length(22050, 22050, 44100) == 44100
    assert model_rate_length(1, 48000, 44100) == 1  # ceil


def test_names_map_through_the_config_and_files_read_as_yaml_and_spkmix_py(
    tmp_path: Path,
) -> None:
    example = json.loads(EXAMPLE.read_text())
    by_name = {"spk_a": example["0"], "spk_b": example["1"], "2": example["2"]}
    named = SpeakerMixTrack.from_mapping(by_name, speakers=SPEAKERS)
    reference = load_speaker_mix_track(EXAMPLE, speakers=SPEAKERS)
    assert named.segments == reference.segments
    assert named.names == ("spk_a", "spk_b", "spk_c")

    yaml_path = tmp_path / "track.yaml"
    yaml_path.write_text(
        "spk_c: [[0, 1, 1, 1]]\n0: [[0, 1, 0, 0]]\n1: [[0, 0.5, 0, 1], [0.5, 1, 1, 0]]\n"
    )
    from_yaml = SpeakerMixTrack.load(yaml_path, speakers=SPEAKERS)
    assert from_yaml.segments[2] == (MixSegment(0.0, 1.0, 1.0, 1.0),)

    original = tmp_path / "spkmix.py"
    original.write_text(
        "# the original's file\nspk_mix_map = {\n"
        + ",\n".join(f"    {key}: {value}" for key, value in example.items())
        + "\n}\n"
    )
    assert SpeakerMixTrack.load(original, speakers=SPEAKERS).segments == reference.segments
    assert json.loads(json.dumps(reference.to_dict())) == {
        key: [[float(v) for v in seg] for seg in value] for key, value in example.items()
    }


def test_spkmix_py_is_parsed_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code = tmp_path / "spkmix.py"
    code.write_text(f"open({str(marker)!r}, 'w')\nspk_mix_map = {{0: [[0, 1, 1, 1]]}}\n")
    assert SpeakerMixTrack.load(code, speakers=1).n_speakers == 1
    assert not marker.exists()
    code.write_text("spk_mix_map = dict(a=1)\n")
    with pytest.raises(InputError, match="not a plain literal"):
        SpeakerMixTrack.load(code, speakers=1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"0": [[0, 1, 1, 1]], "1": [[0, 1, 0, 0]]}, "missing: 2 \\('spk_c'\\)"),
        ({"0": [[0, 1, 1, 1]], "1": [[0, 1, 0, 0]], "3": [[0, 1, 0, 0]]}, "outside 0..2"),
        ({"0": [[0, 1, 1, 1]], "spk_a": [[0, 1, 1, 1]]}, "given twice"),
        ({"0": [[0, 1, 1, 1]], "1": [[0, 1, 0, 0]], "nobody": []}, "neither an index"),
        ({"0": [[0, 1, -1, 1]], "1": [[0, 1, 0, 0]], "2": [[0, 1, 0, 0]]}, "must not be negative"),
        ({"0": [[0, 1.5, 1, 1]], "1": [[0, 1, 0, 0]], "2": [[0, 1, 0, 0]]}, "in \\[0, 1\\]"),
        ({"0": [[0.5, 0.5, 1, 1]], "1": [[0, 1, 0, 0]], "2": [[0, 1, 0, 0]]}, "below t_end"),
        ({"0": [[0, 1, 1]], "1": [[0, 1, 0, 0]], "2": [[0, 1, 0, 0]]}, "expected 4 numbers"),
        ({"0": [[0, 1, "a", 1]], "1": [[0, 1, 0, 0]], "2": [[0, 1, 0, 0]]}, "expected 4 numbers"),
        ({"0": [], "1": [[0, 1, 0, 0]], "2": [[0, 1, 0, 0]]}, "has no segments"),
        ({"0": 1, "1": [[0, 1, 0, 0]], "2": [[0, 1, 0, 0]]}, "expected a list"),
        ([[0, 1, 1, 1]], "must be an object"),
        ({"0": [[0, 1, 0, 0]], "1": [[0, 0.5, 0, 0], [0.5, 1, 0, 0]], "2": [[0, 1, 0, 0]]},
         "every mix weight is 0"),
        ({"0": [[0, 1, float("nan"), 1]], "1": [[0, 1, 0, 0]], "2": [[0, 1, 0, 0]]},
         "finite"),
    ],
)
def test_bad_tracks_are_refused_naming_the_speaker(data: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        SpeakerMixTrack.from_mapping(data, speakers=SPEAKERS)


def _track(*chains: list[list[float]]) -> SpeakerMixTrack:
    return SpeakerMixTrack.from_mapping(
        {str(index): chain for index, chain in enumerate(chains)}, speakers=len(chains)
    )


def test_frame_checks_name_the_segment() -> None:
    full = [[0.0, 1.0, 1.0, 1.0]]
    with pytest.raises(InputError, match=r"speaker 0 segment 1 .* must start where"):
        frame_weights(_track([[0, 0.4, 1, 1], [0.5, 1, 1, 1]], full), 100)
    with pytest.raises(InputError, match=r"speaker 1 segment 0 .* must start at t = 0"):
        frame_weights(_track(full, [[0.2, 1, 1, 1]]), 100)
    with pytest.raises(InputError, match="must end at t = 1"):
        frame_weights(_track(full, [[0, 0.9, 1, 1]]), 100)
    with pytest.raises(InputError, match="covers no frame"):
        frame_weights(_track([[0, 0.001, 1, 1], [0.001, 1, 1, 1]], full), 100)
    # chained on integer frames, as the original checks: 0.5001 and 0.5 meet at frame 50
    weights = frame_weights(_track([[0, 0.5001, 1, 0], [0.5, 1, 0, 1]], full), 100)
    assert weights.shape == (2, 100)


def test_call_weights_pad_extra_model_speakers_and_refuse_frames_past_the_end() -> None:
    weights = frame_weights(_track([[0, 1, 1, 0]], [[0, 1, 0, 1]]), 50)
    window = call_weights(weights, 10, 20, n_model_speakers=4)
    assert window.shape == (20, 4)
    np.testing.assert_array_equal(window[:, :2], weights[:, 10:30].T)
    assert not window[:, 2:].any()
    with pytest.raises(ValueError, match="outside"):
        call_weights(weights, 40, 20)


def test_one_hot_weights_give_the_same_audio_as_a_speaker_id() -> None:
    folder = SOVITS41 / "variants" / "c_dsconv_share"
    model, _ = load_synthesizer(folder / "G_0_release.pth", folder / "config.json", fast=False)
    arrays = load_npz(folder / "fixtures.npz")
    frames = arrays["in.c"].shape[2]
    weights = frame_weights(_track([[0, 1, 0, 0]], [[0, 1, 1, 1]], [[0, 1, 0, 0]]), frames + 1)
    mix = torch.from_numpy(call_weights(weights, 0, frames))
    inputs = [torch.from_numpy(arrays[name]) for name in ("in.c", "in.f0", "in.uv")]
    with torch.inference_mode():
        by_id = model.infer(*inputs, speaker=torch.tensor([[1]]), noise_scale=0.4,
                            noise=NoiseSource.from_seed(1)).audio
        by_mix = model.infer(*inputs, speaker=mix, noise_scale=0.4,
                             noise=NoiseSource.from_seed(1)).audio
    # the per-frame condition [1, gin, T] takes another op order than the broadcast
    # [1, gin, 1] of an id, hence 1e-5 rather than exact
    torch.testing.assert_close(by_mix, by_id, atol=1e-5, rtol=0)


def test_a_stretch_where_all_weights_are_zero_is_mixed_equally_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("WARNING", logger="sovits.inference.speaker_mix"):
        track = _track([[0, 0.5, 0, 0], [0.5, 1, 1, 1]], [[0, 1, 0, 0]])
    assert "from t = 0 to t = 0.5 every speaker's weight is 0" in caplog.text
    weights = frame_weights(track, 10)
    np.testing.assert_array_equal(weights[:, :5], 0.5)
    np.testing.assert_array_equal(weights[:, 5:], [[1.0] * 5, [0.0] * 5])
    assert track.weight_at(0, 0.75) == 1.0 and track.weight_at(1, 0.75) == 0.0
