"""JobService: conversions end to end, typed failures, the queue limit, cancellation,
the model cache, and the child process of preprocessing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from sovits.api import JobService
from sovits.api import runners as job_runners
from sovits.api.errors import (
    JobNotFoundError,
    JobStateError,
    PathNotAllowedError,
    QueueFullError,
    UnknownModelError,
)
from sovits.errors import InputError
from tests.api.helpers import RATE, SPEAKERS, make_models_root, write_tone

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_models_root(tmp_path_factory.mktemp("models"), ("tiny", "other"))


@pytest.fixture
def service(models_root: Path, tmp_path: Path) -> Iterator[JobService]:
    with JobService(models_root, tmp_path / "work", max_queued=4) as jobs:
        yield jobs


def test_models_lists_each_folder_with_its_files_and_speakers(service: JobService) -> None:
    found = {info.name: info for info in service.models()}
    assert sorted(found) == ["other", "tiny"]
    tiny = found["tiny"]
    assert tiny.model_file.name == "G_0_release.pth"
    assert tiny.speakers == SPEAKERS and tiny.sample_rate == RATE and tiny.encoder == "spectral"
    assert tiny.cluster_model is None and tiny.diffusion_model is None
    inspected = service.models(with_inspect=True)[0].inspect
    assert inspected is not None and inspected["fits_config"] is True


def test_a_conversion_runs_reports_progress_and_writes_the_result(service: JobService) -> None:
    write_tone(service.work_dir / "in.wav", seconds=0.5)
    job = service.submit("convert", {"model": "tiny", "input": "in.wav",
                                     "options": {"transpose": 2, "pad_seconds": 0.1}})
    assert job.state == "queued" and job.params["options"]["speaker"] == "spk_a"
    updates = list(service.events(job.id))
    assert updates[-1]["state"] == "done" and updates[-1]["progress"] == 1.0
    progress = [update["progress"] for update in updates]
    assert progress == sorted(progress)
    view = service.get(job.id)
    assert view.error is None and len(view.results) == 1
    result = Path(view.results[0])
    assert result.name == "in_2key_spk_a_sovits_pm.flac"
    audio, rate = soundfile.read(result)
    assert rate == RATE and audio.shape == (int(0.5 * RATE),)
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    again = service.wait(service.retry(job.id).id, timeout=60)
    assert again.state == "done" and again.params == view.params
    assert Path(again.results[0]).name == result.name


def test_bad_requests_fail_at_submit_with_typed_errors(service: JobService) -> None:
    write_tone(service.work_dir / "in.wav")
    with pytest.raises(InputError, match="unknown job kind"):
        service.submit("nope", {})
    with pytest.raises(UnknownModelError):
        service.submit("convert", {"model": "missing", "input": "in.wav"})
    with pytest.raises(PathNotAllowedError):
        service.submit("convert", {"model": "../tiny", "input": "in.wav"})
    with pytest.raises(PathNotAllowedError):
        service.submit("convert", {"model": "tiny", "input": "../../../etc/passwd"})
    with pytest.raises(PathNotAllowedError):
        service.submit("convert", {"model": "tiny", "input": "/etc/passwd"})
    with pytest.raises(InputError, match="unknown option"):
        service.submit("convert", {"model": "tiny", "input": "in.wav", "options": {"x": 1}})
    with pytest.raises(InputError, match="out of range"):
        service.submit("convert", {"model": "tiny", "input": "in.wav",
                                   "options": {"transpose": 99}})
    with pytest.raises(InputError, match="no speaker"):
        service.submit("convert", {"model": "tiny", "input": "in.wav",
                                   "options": {"speaker": "nobody"}})
    with pytest.raises(InputError, match="needs a cluster model"):
        service.submit("convert", {"model": "tiny", "input": "in.wav",
                                   "options": {"cluster_ratio": 0.5}})
    with pytest.raises(JobNotFoundError):
        service.get("000000-none")
    assert service.list() == []


def test_the_work_folder_may_not_lie_inside_the_models_root(models_root: Path) -> None:
    with pytest.raises(InputError, match="inside the models root"):
        JobService(models_root, models_root / "work")


def test_links_out_of_the_work_folder_are_refused(service: JobService) -> None:
    outside = write_tone(service.work_dir.parent / "outside.wav")
    (service.work_dir / "link.wav").symlink_to(outside)
    with pytest.raises(PathNotAllowedError):
        service.submit("f0", {"input": "link.wav"})


def test_pickled_formats_are_never_taken_from_the_work_folder(service: JobService) -> None:
    write_tone(service.work_dir / "in.wav")
    upload = service.work_dir / "kmeans_10.pt"
    upload.write_bytes(b"not really a pickle")
    with pytest.raises(PathNotAllowedError):
        service.submit("convert", {"model": "tiny", "input": "in.wav",
                                   "options": {"cluster_ratio": 0.5,
                                               "cluster_model_path": str(upload)}})
    with pytest.raises(InputError, match="not an existing file"):  # looked for in models only
        service.submit("convert", {"model": "tiny", "input": "in.wav",
                                   "options": {"cluster_ratio": 0.5,
                                               "cluster_model_path": "kmeans_10.pt"}})


def test_a_failing_job_ends_failed_with_a_typed_error(service: JobService) -> None:
    (service.work_dir / "broken.wav").write_text("this is not audio")
    job = service.submit("convert", {"model": "tiny", "input": "broken.wav"})
    view = service.wait(job.id, timeout=60)
    assert view.state == "failed" and view.error is not None
    assert view.error.code == "input" and "Traceback" not in view.error.message


def _blocking_runner(gate: threading.Event, started: threading.Event) -> Any:
    def run(context: Any, prepared: Any) -> list[Path]:
        started.set()
        while not gate.wait(0.05):
            context.check_cancelled()
        return []

    return run


def test_queue_limit_concurrency_and_cancelling_queued_and_running_jobs(
    models_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, started = threading.Event(), threading.Event()
    monkeypatch.setitem(job_runners._RUNNERS, "inspect", _blocking_runner(gate, started))
    with JobService(models_root, tmp_path / "work", max_queued=2) as service:
        first = service.submit("inspect", {"model": "tiny"})
        assert started.wait(10)
        waiting = [service.submit("inspect", {"model": "tiny"}) for _ in range(2)]
        with pytest.raises(QueueFullError):
            service.submit("inspect", {"model": "tiny"})
        assert service.cancel(waiting[0].id).state == "cancelled"
        service.submit("inspect", {"model": "tiny"})  # a place was freed
        assert service.get(first.id).state == "running"
        with pytest.raises(JobStateError):
            service.retry(first.id)
        assert service.cancel(first.id).stage == "cancelling"
        assert service.wait(first.id, timeout=10).state == "cancelled"
        gate.set()
        for view in service.list():
            assert service.wait(view.id, timeout=10).terminal
        states = sorted(view.state for view in service.list())
        assert states == ["cancelled", "cancelled", "done", "done"]
        assert service.peak_running["conversion"] == 1


def test_cancel_stops_a_conversion_between_clips(service: JobService) -> None:
    write_tone(service.work_dir / "long.wav", seconds=12.0)
    job = service.submit("convert", {"model": "tiny", "input": "long.wav",
                                     "options": {"clip_seconds": 1.0, "pad_seconds": 0.1}})
    for update in service.events(job.id):
        if update["stage"] == "converting" and update["progress"] > 0:
            service.cancel(job.id)
            break
    view = service.wait(job.id, timeout=60)
    assert view.state == "cancelled" and view.results == [] and view.progress < 1.0
    assert not list((service.work_dir / "jobs" / job.id).glob("*.flac"))


def test_loaded_models_are_cached_and_bounded(models_root: Path, tmp_path: Path) -> None:
    write_tone(tmp_path / "work" / "in.wav", seconds=0.3)
    with JobService(models_root, tmp_path / "work", model_cache_size=1) as service:
        for model in ("tiny", "tiny", "other"):
            job = service.submit("convert", {"model": model, "input": "in.wav"})
            assert service.wait(job.id, timeout=60).state == "done"
        assert service.converters.loads == 2 and len(service.converters) == 1


def test_tool_jobs_write_their_results_into_the_job_folder(service: JobService) -> None:
    write_tone(service.work_dir / "in.wav", seconds=0.5)
    f0 = service.wait(service.submit("f0", {"input": "in.wav", "format": "csv"}).id, 60)
    assert f0.state == "done", f0.error
    lines = Path(f0.results[0]).read_text().splitlines()
    assert lines[0].startswith("time_s") and len(lines) > 10
    inspected = service.wait(service.submit("inspect", {"model": "tiny"}).id, 60)
    assert inspected.state == "done" and any("spk_a" in line for line in inspected.log)
    merged = service.wait(service.submit("merge", {"models": ["tiny", "other"]}).id, 60)
    assert merged.state == "done", merged.error
    assert Path(merged.results[0]).stat().st_size > 0


def test_preprocessing_runs_in_a_child_and_its_error_comes_back_typed(
    service: JobService,
) -> None:
    (service.work_dir / "empty_dataset").mkdir()
    job = service.submit("preprocess", {"model": "tiny", "dataset": "empty_dataset",
                                        "f0_method": "pm"})
    view = service.wait(job.id, timeout=90)
    assert view.state == "failed" and view.error is not None
    assert view.error.code == "input", view.error
    again = service.wait(service.submit("inspect", {"model": "tiny"}).id, 60)
    assert again.state == "done"  # the service lives on


def test_cancelling_a_training_job_ends_its_child_process(models_root: Path,
                                                           tmp_path: Path) -> None:
    import json
    import shutil

    folder = tmp_path / "models" / "trainme"
    folder.mkdir(parents=True)
    shutil.copy(models_root / "tiny" / "config.json", folder / "config.json")
    data = json.loads((folder / "config.json").read_text())
    data["data"]["training_files"] = "filelists/train.txt"
    (folder / "config.json").write_text(json.dumps(data))
    with JobService(tmp_path / "models", tmp_path / "work") as service:
        job = service.submit("train", {"model": "trainme", "max_steps": 1,
                                       "accelerator": "cpu"})
        for update in service.events(job.id):
            if update["stage"] == "starting train":  # the child is being started
                break
        time.sleep(1.0)
        service.cancel(job.id)
        view = service.wait(job.id, timeout=60)  # ends only after the child has exited
        assert view.state == "cancelled", view
        assert view.error is None and view.results == []
