"""JobService: the dataset jobs (resample, prepare), the audio limits every shell goes
through, the bounded uploads folder, and the compress job's output name."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile

from sovits.api import JobService
from sovits.api import runners as job_runners
from sovits.api.errors import PathNotAllowedError, PayloadTooLargeError
from sovits.errors import InputError
from tests.api.helpers import make_models_root, write_raw_dataset, write_tone

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_models_root(tmp_path_factory.mktemp("models"))


@pytest.fixture
def service(models_root: Path, tmp_path: Path) -> Iterator[JobService]:
    with JobService(models_root, tmp_path / "work") as jobs:
        yield jobs


def test_resample_then_prepare_fill_a_fresh_model_folder(service: JobService) -> None:
    write_raw_dataset(service.work_dir / "dataset_raw")
    resampled = service.wait(service.submit("resample", {"model": "fresh"}).id, timeout=60)
    assert resampled.state == "done", resampled.error
    output = service.work_dir / "dataset" / "44k"
    assert resampled.results == [str(output)]
    clips = sorted(output.glob("*/*.wav"))
    assert len(clips) == 6
    info = soundfile.info(str(clips[0]))
    assert info.samplerate == 44100 and info.channels == 1 and info.subtype == "PCM_16"
    assert "6 written" in resampled.log[-1]

    prepared = service.wait(service.submit("prepare", {
        "model": "fresh", "speech_encoder": "spectral", "tiny": True, "val_per_speaker": 1,
    }).id, timeout=60)
    assert prepared.state == "done", prepared.error
    folder = service.models_root / "fresh"
    assert prepared.results == [str(folder / name) for name in (
        "config.json", "diffusion.yaml", "filelists/train.txt", "filelists/val.txt")]
    config = json.loads((folder / "config.json").read_text())
    assert config["spk"] == {"alto": 0, "tenor": 1}
    assert config["model"]["speech_encoder"] == "spectral"
    assert config["data"]["training_files"] == str(folder / "filelists" / "train.txt")
    listed = (folder / "filelists" / "train.txt").read_text().split()
    listed += (folder / "filelists" / "val.txt").read_text().split()
    # absolute clip paths: the training child finds them whatever its working folder
    assert sorted(listed) == [str(clip) for clip in clips]
    assert "2 speakers, 4 training clips, 2 validation clips" in prepared.log[-1]

    # the folder's config is never replaced by accident
    with pytest.raises(InputError, match=r"already has a config\.json"):
        service.submit("prepare", {"model": "fresh"})
    again = service.submit("prepare", {"model": "fresh", "overwrite": True, "tiny": True,
                                       "speech_encoder": "spectral"})
    assert service.wait(again.id, timeout=60).state == "done"


def test_dataset_jobs_confine_their_folders(service: JobService, tmp_path: Path) -> None:
    write_raw_dataset(tmp_path / "elsewhere")
    with pytest.raises(PathNotAllowedError):
        service.submit("resample", {"model": "fresh", "dataset": str(tmp_path / "elsewhere")})
    (service.work_dir / "dataset_raw").mkdir()
    with pytest.raises(PathNotAllowedError):
        service.submit("resample", {"model": "fresh", "output": "../outside"})
    (service.work_dir / "dataset" / "44k").mkdir(parents=True)
    with pytest.raises(PathNotAllowedError):
        service.submit("prepare", {"model": "../escape"})
    with pytest.raises(InputError, match="output folder is the dataset folder"):
        service.submit("resample", {"model": "fresh", "output": "dataset_raw"})
    with pytest.raises(InputError, match="not an existing folder"):
        service.submit("prepare", {"model": "fresh", "dataset": "no/such/folder"})
    assert not (tmp_path / "outside").exists()


def test_audio_duration_limit_holds_for_uploads_and_submitted_jobs(
    models_root: Path, tmp_path: Path
) -> None:
    with JobService(models_root, tmp_path / "work", max_audio_seconds=0.5,
                    max_upload_bytes=200_000) as service:
        long = write_tone(tmp_path / "long.wav", seconds=1.0)
        short = write_tone(tmp_path / "short.wav", seconds=0.3)
        with pytest.raises(PayloadTooLargeError, match=r"lasts 1\.0 s; the limit is 0\.5 s"):
            service.store_upload(long)
        assert not list((service.work_dir / "uploads").iterdir())  # nothing kept
        stored = service.store_upload(short)
        assert stored.read_bytes() == short.read_bytes()
        with pytest.raises(PayloadTooLargeError, match="larger than 200000 bytes"):
            service.store_upload(write_tone(tmp_path / "big.wav", seconds=3.0), audio=False)
        # a file placed in the work folder by other means is checked at submit
        placed = write_tone(service.work_dir / "placed.wav", seconds=1.0)
        for kind, params in (("convert", {"model": "tiny", "input": "placed.wav"}),
                             ("f0", {"input": "placed.wav"}),
                             ("evaluate", {"source": str(stored), "converted": "placed.wav"})):
            with pytest.raises(PayloadTooLargeError):
                service.submit(kind, params)
        assert service.list() == []
        done = service.wait(service.submit("f0", {"input": str(stored)}).id, timeout=60)
        assert done.state == "done"
        service.set_limits(max_upload_bytes=None, max_audio_seconds=None)
        view = service.wait(service.submit("f0", {"input": str(placed)}).id, timeout=60)
        assert view.state == "done"


def _folders(service: JobService) -> list[str]:
    return sorted(entry.name for entry in (service.work_dir / "uploads").iterdir())


def test_uploads_are_deleted_with_their_jobs_and_beyond_count_or_age(
    models_root: Path, tmp_path: Path
) -> None:
    tone = write_tone(tmp_path / "tone.wav", seconds=0.3)
    with JobService(models_root, tmp_path / "work", max_finished_jobs=1) as service:
        first = service.store_upload(tone)
        second = service.store_upload(tone)
        for upload in (first, second):
            assert service.wait(service.submit("f0", {"input": str(upload)}).id, 60).terminal
        assert first.is_file() and second.is_file()
        # a third job makes the service forget the first job, and with it its upload
        service.wait(service.submit("inspect", {"model": "tiny"}).id, 60)
        assert not first.parent.exists() and second.is_file()

    with JobService(models_root, tmp_path / "work2", max_uploads=3,
                    max_upload_age=3600.0) as service:
        stored = []
        for _ in range(5):
            stored.append(service.store_upload(tone))
            time.sleep(0.01)  # distinct modification times
        assert _folders(service) == sorted(path.parent.name for path in stored[2:])
        # an old upload goes when the next arrives
        hour_ago = time.time() - 7200
        os.utime(stored[2].parent, (hour_ago, hour_ago))
        stored.append(service.store_upload(tone))
        assert not stored[2].parent.exists() and stored[3].is_file()


def test_an_upload_a_running_job_names_is_never_pruned(
    models_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, started = threading.Event(), threading.Event()

    def blocking(context: object, prepared: object) -> list[Path]:
        started.set()
        gate.wait(30)
        return []

    monkeypatch.setitem(job_runners._RUNNERS, "f0", blocking)
    tone = write_tone(tmp_path / "tone.wav", seconds=0.3)
    with JobService(models_root, tmp_path / "work", max_uploads=1) as service:
        busy = service.store_upload(tone)
        job = service.submit("f0", {"input": str(busy)})
        assert started.wait(10)
        newer = service.store_upload(tone)  # over the count, but the oldest is in use
        assert busy.is_file() and newer.is_file()
        gate.set()
        assert service.wait(job.id, 30).state == "done"
        newest = service.store_upload(tone)
        assert not busy.parent.exists() and not newer.parent.exists() and newest.is_file()


def test_compress_names_a_release_once(service: JobService) -> None:
    view = service.wait(service.submit("compress", {"model": "tiny", "half": True}).id, 60)
    assert view.state == "done", view.error
    assert [Path(path).name for path in view.results] == ["G_0_release_half.pth"]
