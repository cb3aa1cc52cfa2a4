"""Output planning: unique result names within a run, no silent overwrites."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovits.errors import InputError
from sovits.inference.converter import output_name
from sovits.inference.options import ConvertOptions
from sovits.inference.outputs import plan_output_paths


def test_each_job_gets_its_converter_name(tmp_path: Path) -> None:
    one = ConvertOptions(speaker="alto")
    two = ConvertOptions(speaker="alto", transpose=3)
    jobs = [(Path("in/a.wav"), one), (Path("in/a.wav"), two), (Path("in/b.flac"), one)]
    planned = plan_output_paths(jobs, tmp_path / "results")
    assert planned == [
        tmp_path / "results" / output_name("a", one),
        tmp_path / "results" / output_name("a", two),
        tmp_path / "results" / output_name("b", one),
    ]
    assert len(set(planned)) == 3
    assert not (tmp_path / "results").exists()  # planning writes nothing


@pytest.mark.parametrize(
    ("first", "second"),
    [("song.wav", "song.flac"), ("a/song.wav", "b/song.wav"), ("Song.wav", "song.wav")],
)
def test_same_stem_clash_names_both_inputs(tmp_path: Path, first: str, second: str) -> None:
    options = ConvertOptions(speaker="alto")
    with pytest.raises(InputError) as caught:
        plan_output_paths([(Path(first), options), (Path(second), options)], tmp_path)
    message = str(caught.value)
    assert first in message and second in message
    assert output_name(Path(second).stem, options) in message


def test_same_input_twice_is_refused(tmp_path: Path) -> None:
    options = ConvertOptions(speaker="alto")
    with pytest.raises(InputError, match="listed twice"):
        plan_output_paths([(Path("x.wav"), options), (Path("x.wav"), options)], tmp_path)


def test_existing_result_needs_overwrite(tmp_path: Path) -> None:
    options = ConvertOptions(speaker="alto")
    target = tmp_path / output_name("song", options)
    target.write_bytes(b"old")
    with pytest.raises(InputError, match="--overwrite") as caught:
        plan_output_paths([(Path("song.wav"), options)], tmp_path)
    assert str(target) in str(caught.value)
    assert plan_output_paths([(Path("song.wav"), options)], tmp_path, overwrite=True) == [target]
    assert target.read_bytes() == b"old"


def test_result_path_that_is_a_folder_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    options = ConvertOptions(speaker="alto")
    (tmp_path / output_name("song", options)).mkdir()
    with pytest.raises(InputError, match="folder"):
        plan_output_paths([(Path("song.wav"), options)], tmp_path, overwrite=True)
