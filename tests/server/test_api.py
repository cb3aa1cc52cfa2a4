"""The HTTP API on a real uvicorn server on loopback, called with httpx: every route,
each error code, the upload limits, path traversal, Host/Origin checks and the token."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile

from sovits.api import JobService
from sovits.server import create_app
from tests.api.helpers import RATE, SPEAKERS, make_models_root, write_tone
from tests.server.live import serving

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_models_root(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def server(models_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[httpx.Client, JobService]]:
    service = JobService(models_root, tmp_path_factory.mktemp("work"))
    app = create_app(service, token=None, allowed_hosts=None, with_ui=False,
                     max_upload_bytes=2_000_000, max_audio_seconds=5.0)
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, service
    service.close()


@pytest.fixture(scope="module")
def tone(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_tone(tmp_path_factory.mktemp("audio") / "tone.wav", seconds=0.5).read_bytes()


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    error: dict[str, Any] = body["error"]
    return error


def _wait(client: httpx.Client, job_id: str) -> dict[str, Any]:
    last: dict[str, Any] = {}
    with client.stream("GET", f"/api/v1/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                last = json.loads(line[6:])
    return last


def test_health_models_speakers_and_options(server: tuple[httpx.Client, JobService]) -> None:
    client, _ = server
    assert client.get("/api/v1/health").json()["status"] == "ok"
    models = client.get("/api/v1/models").json()
    assert [model["name"] for model in models] == ["tiny"]
    assert models[0]["speakers"] == list(SPEAKERS) and models[0]["sample_rate"] == RATE
    detail = client.get("/api/v1/models/tiny").json()
    assert detail["inspect"]["fits_config"] is True
    assert client.get("/api/v1/models/tiny/speakers").json() == list(SPEAKERS)
    options = {item["name"]: item for item in client.get("/api/v1/options").json()}
    assert options["transpose"]["flags"][:2] == ["--transpose", "-t"]
    assert options["transpose"]["maximum"] == 48.0
    assert "rmvpe" in options["f0_method"]["choices"]
    f0_options = client.get("/api/v1/options", params={"kind": "f0"}).json()
    assert {item["name"] for item in f0_options} >= {"input", "method", "hop"}
    _error(client.get("/api/v1/options", params={"kind": "bogus"}), 422, "input")
    spec = client.get("/openapi.json").json()
    convert_options = spec["components"]["schemas"]["ConvertOptions"]["properties"]
    assert convert_options["transpose"]["maximum"] == 48.0
    assert "/voiceChangeModel" in spec["paths"]


def test_upload_convert_follow_events_and_download(server: tuple[httpx.Client, JobService],
                                                   tone: bytes) -> None:
    client, _ = server
    response = client.post(
        "/api/v1/convert", files={"file": ("take 1.wav", tone, "audio/wav")},
        data={"model": "tiny", "options": json.dumps({"transpose": -3, "speaker": "spk_b",
                                                      "audio_format": "wav"})},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["state"] in ("queued", "running") and job["kind"] == "convert"
    final = _wait(client, job["id"])
    assert final["state"] == "done" and final["progress"] == 1.0
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "done"
    assert any(item["id"] == job["id"] for item in client.get("/api/v1/jobs").json())
    download = client.get(f"/api/v1/jobs/{job['id']}/results/0")
    assert download.status_code == 200
    audio, rate = soundfile.read(io.BytesIO(download.content))
    assert rate == RATE and audio.shape == (int(0.5 * RATE),) and np.abs(audio).max() > 0
    assert Path(final["results"][0]).name == "take_1_-3key_spk_b_sovits_pm.wav"
    _error(client.get(f"/api/v1/jobs/{job['id']}/results/5"), 404, "job_not_found")


def test_upload_then_json_job_and_the_other_job_kinds(server: tuple[httpx.Client, JobService],
                                                      tone: bytes) -> None:
    client, _ = server
    stored = client.post("/api/v1/files", files={"file": ("a.wav", tone)})
    assert stored.status_code == 201
    path = stored.json()["path"]
    assert path.startswith("uploads/") and stored.json()["bytes"] == len(tone)
    job = client.post("/api/v1/jobs/convert", json={"model": "tiny", "input": path,
                                                    "options": {"noise_scale": 0.0}})
    assert job.status_code == 202, job.text
    assert _wait(client, job.json()["id"])["state"] == "done"
    f0 = client.post("/api/v1/jobs/f0", json={"input": path, "method": "dio"})
    assert f0.status_code == 202
    assert _wait(client, f0.json()["id"])["state"] == "done"
    curve = client.get(f"/api/v1/jobs/{f0.json()['id']}/results/0")
    assert curve.text.startswith("time_s")
    inspected = client.post("/api/v1/jobs/inspect", json={"model": "tiny"})
    assert _wait(client, inspected.json()["id"])["state"] == "done"


def test_error_codes(server: tuple[httpx.Client, JobService], tone: bytes) -> None:
    client, service = server
    write_tone(service.work_dir / "in.wav", seconds=0.3)
    _error(client.get("/api/v1/jobs/000000-nothing"), 404, "job_not_found")
    _error(client.post("/api/v1/jobs/000000-nothing/cancel"), 404, "job_not_found")
    _error(client.get("/api/v1/models/absent"), 404, "unknown_model")
    _error(client.get("/api/v1/nothing-here"), 404, "not_found")
    _error(client.delete("/api/v1/health"), 405, "method_not_allowed")
    _error(client.post("/api/v1/jobs/convert", json={"model": "tiny", "input": "in.wav",
                                                     "options": {"transpose": 99}}),
           422, "validation")
    _error(client.post("/api/v1/jobs/convert", json={"model": "tiny", "input": "in.wav",
                                                     "options": {"bogus": 1}}),
           422, "validation")
    error = _error(client.post("/api/v1/jobs/convert", json={
        "model": "tiny", "input": "in.wav", "options": {"crossfade_seconds": 0.5}}), 422, "input")
    assert "clip" in error["message"]
    _error(client.post("/api/v1/convert", files={"file": ("x.wav", b"not audio at all")},
                       data={"model": "tiny"}), 422, "input")
    _error(client.post("/api/v1/convert", files={"file": ("x.wav", tone)},
                       data={"model": "tiny", "options": "{not json"}), 422, "input")
    _error(client.post("/api/v1/convert", files={"file": ("x.wav", tone)},
                       data={"model": "absent"}), 404, "unknown_model")
    (service.work_dir / "bad.wav").write_text("text, not audio")
    failed = client.post("/api/v1/jobs/f0", json={"input": "bad.wav"})
    assert failed.status_code == 202
    final = _wait(client, failed.json()["id"])
    assert final["state"] == "failed" and final["error"]["code"] == "input"
    _error(client.get(f"/api/v1/jobs/{final['id']}/results/0"), 409, "job_state")
    soundfile.write(service.work_dir / "bad.wav", np.zeros(RATE // 4, np.float32), RATE)
    retried = client.post(f"/api/v1/jobs/{final['id']}/retry")
    assert retried.status_code == 202 and retried.json()["id"] != final["id"]
    assert retried.json()["params"] == final["params"]
    assert _wait(client, retried.json()["id"])["state"] == "done"
    _error(client.post("/api/v1/jobs/000000-nothing/retry"), 404, "job_not_found")


@pytest.mark.parametrize("name", ["../etc/passwd", "/etc/passwd", "uploads/../../../etc/passwd",
                                  "..", "%2e%2e/%2e%2e/etc/passwd"])
def test_path_traversal_is_refused(server: tuple[httpx.Client, JobService], name: str) -> None:
    client, _ = server
    response = client.post("/api/v1/jobs/f0", json={"input": name})
    assert response.status_code in (403, 422), response.text
    assert response.json()["error"]["code"] in ("path_not_allowed", "input")
    model = client.post("/api/v1/jobs/inspect", json={"model": name})
    assert model.status_code in (403, 404)
    assert model.json()["error"]["code"] in ("path_not_allowed", "unknown_model")


def test_pickles_are_not_loaded_from_uploads(server: tuple[httpx.Client, JobService],
                                             tone: bytes) -> None:
    client, _ = server
    pickle = client.post("/api/v1/files", files={"file": ("kmeans_10.pt", b"\x80\x04N.")},
                         data={"audio": "false"}).json()["path"]
    audio = client.post("/api/v1/files", files={"file": ("a.wav", tone)}).json()["path"]
    response = client.post("/api/v1/jobs/convert", json={
        "model": "tiny", "input": audio,
        "options": {"cluster_ratio": 0.5, "cluster_model_path": pickle}})
    assert response.status_code in (403, 422)
    work = server[1].work_dir
    absolute = client.post("/api/v1/jobs/convert", json={
        "model": "tiny", "input": audio,
        "options": {"cluster_ratio": 0.5, "cluster_model_path": str(work / pickle)}})
    _error(absolute, 403, "path_not_allowed")


def test_upload_size_and_audio_duration_limits(server: tuple[httpx.Client, JobService],
                                               tmp_path: Path) -> None:
    client, _ = server
    _error(client.post("/api/v1/files", files={"file": ("big.bin", b"\0" * 2_100_000)},
                       data={"audio": "false"}), 413, "payload_too_large")
    long = write_tone(tmp_path / "long.wav", seconds=6.0, rate=16000).read_bytes()
    _error(client.post("/api/v1/convert", files={"file": ("long.wav", long)},
                       data={"model": "tiny"}), 413, "payload_too_large")
    # the limits live in the job service: every route that takes audio enforces them
    service = server[1]
    assert (service.max_upload_bytes, service.max_audio_seconds) == (2_000_000, 5.0)
    _error(client.post("/voiceChangeModel", files={"sample": ("long.wav", long)}), 413,
           "payload_too_large")
    (service.work_dir / "placed.wav").write_bytes(long)  # not uploaded: checked at submit
    for kind, body in (("f0", {"input": "placed.wav"}),
                       ("convert", {"model": "tiny", "input": "placed.wav"})):
        error = _error(client.post(f"/api/v1/jobs/{kind}", json=body), 413, "payload_too_large")
        assert "the limit is 5 s" in error["message"] and str(tmp_path) not in error["message"]


def test_host_and_origin_checks(server: tuple[httpx.Client, JobService], tone: bytes) -> None:
    client, _ = server
    _error(client.get("/api/v1/models", headers={"Host": "evil.example"}), 400,
           "host_not_allowed")
    _error(client.post("/api/v1/jobs/inspect", json={"model": "tiny"},
                       headers={"Origin": "http://evil.example"}), 403, "origin_not_allowed")
    same = client.post("/api/v1/jobs/inspect", json={"model": "tiny"},
                       headers={"Origin": str(client.base_url).rstrip("/")})
    assert same.status_code == 202
    assert client.get("/api/v1/models", headers={"Origin": "http://evil.example"}).is_success


def test_vst_route_answers_as_flask_api_did(server: tuple[httpx.Client, JobService],
                                            tone: bytes) -> None:
    client, _ = server
    response = client.post("/voiceChangeModel", files={"sample": ("blob", tone)},
                           data={"fPitchChange": "2.0", "sampleRate": "48000", "sSpeakId": "1"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert 'filename="temp.wav"' in response.headers["content-disposition"]
    audio, rate = soundfile.read(io.BytesIO(response.content))
    assert rate == 48000 and abs(len(audio) - int(0.5 * 48000)) <= 2
    _error(client.post("/voiceChangeModel", files={"sample": ("blob", tone)},
                       data={"sSpeakId": "9"}), 422, "input")


def test_token_is_required_when_set(models_root: Path, tmp_path: Path) -> None:
    with JobService(models_root, tmp_path / "work") as service:
        app = create_app(service, token="s3cret", allowed_hosts=["*"], with_ui=False)
        with serving(app) as url, httpx.Client(base_url=url) as client:
            assert client.get("/api/v1/health").status_code == 200
            _error(client.get("/api/v1/models"), 401, "unauthorized")
            _error(client.get("/api/v1/models", headers={"Authorization": "Bearer wrong"}),
                   401, "unauthorized")
            _error(client.get("/openapi.json"), 401, "unauthorized")
            ok = client.get("/api/v1/models", headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200
            first = client.get("/api/v1/jobs", params={"token": "s3cret"})
            assert first.status_code == 200 and "sovits_token" in first.cookies
            assert client.get("/api/v1/jobs").status_code == 200  # the cookie now


def test_vst_route_uses_a_model_file_pinned_as_in_infer(models_root: Path,
                                                        tmp_path: Path, tone: bytes) -> None:
    elsewhere = make_models_root(tmp_path / "elsewhere", ("solo",)) / "solo"
    with JobService(models_root, tmp_path / "work") as service:
        pinned = service.pin_model("G_0_release", elsewhere / "G_0_release.pth",
                                   elsewhere / "config.json")
        assert [info.name for info in service.models()] == ["G_0_release", "tiny"]
        app = create_app(service, token=None, allowed_hosts=None, with_ui=False,
                         vst_model=pinned.name)
        with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
            response = client.post("/voiceChangeModel", files={"sample": ("blob", tone)},
                                   data={"fPitchChange": "0", "sampleRate": "22050"})
            assert response.status_code == 200, response.text
            audio, rate = soundfile.read(io.BytesIO(response.content))
            assert rate == 22050 and abs(len(audio) - int(0.5 * 22050)) <= 2


def test_an_internal_error_is_json_without_a_stack_trace(
    server: tuple[httpx.Client, JobService], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, service = server

    def broken() -> None:
        raise RuntimeError("secret detail /home/user/x.py line 3")

    monkeypatch.setattr(service, "list", broken)
    error = _error(client.get("/api/v1/jobs"), 500, "internal")
    assert "secret" not in error["message"] and "RuntimeError" in error["message"]
