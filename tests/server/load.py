"""Loopback load test of the server: N concurrent conversion submissions of the tiny
model, every result checked, the queue limit, resident memory and status latency
watched.

    python -m tests.server.load [--jobs 20] [--max-conversions 1] [--max-queued 8]

prints the figures (the test in test_load.py asserts on the same run, smaller).
Submissions refused with 429 (queue full) are retried after a short pause, so every
job is eventually accepted; a poller measures GET /api/v1/jobs/{id} while they run.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import soundfile

from sovits.api import JobService
from sovits.server import create_app
from tests.api.helpers import RATE, make_models_root, write_tone
from tests.server.live import serving


def _rss_mb() -> float:
    """Resident memory of this process (server and clients), MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class LoadReport:
    """What one load run measured."""

    jobs: int
    concurrency: int
    max_conversions: int
    max_queued: int
    done: int = 0
    failures: list[str] = field(default_factory=list)
    refused_429: int = 0
    most_queued_seen: int = 0
    peak_running: int = 0
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    status_latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.status_latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def summary(self) -> str:
        return (
            f"jobs {self.jobs}, concurrency {self.concurrency} clients, "
            f"max_conversions {self.max_conversions}, max_queued {self.max_queued}: "
            f"done {self.done}, failures {len(self.failures)}, 429 refusals "
            f"{self.refused_429}, most queued seen {self.most_queued_seen}, peak running "
            f"{self.peak_running}; RSS {self.rss_before_mb:.0f} MB before, peak "
            f"{self.rss_peak_mb:.0f} MB; status call p50 {self.percentile(0.5):.1f} ms, "
            f"p95 {self.percentile(0.95):.1f} ms over {len(self.status_latencies_ms)} calls "
            f"(median {statistics.median(self.status_latencies_ms or [0]):.1f} ms); "
            f"wall {self.wall_s:.1f} s"
        )


def run_load(folder: Path, *, jobs: int = 20, max_conversions: int = 1,
             max_queued: int = 8, seconds: float = 0.5, timeout: float = 300.0) -> LoadReport:
    """Run the load against a fresh server whose files live in `folder`."""
    models_root = make_models_root(folder / "models")
    tone = write_tone(folder / "tone.wav", seconds=seconds).read_bytes()
    report = LoadReport(jobs=jobs, concurrency=jobs, max_conversions=max_conversions,
                        max_queued=max_queued)
    stop = threading.Event()
    lock = threading.Lock()
    submitted: list[str] = []
    with JobService(models_root, folder / "work", max_conversions=max_conversions,
                    max_queued=max_queued) as service:
        app = create_app(service, token=None, allowed_hosts=None, with_ui=False)
        with serving(app) as url:
            # one conversion first so that model loading is not counted as load
            with httpx.Client(base_url=url, timeout=60) as client:
                warm = client.post("/api/v1/convert", files={"file": ("w.wav", tone)},
                                   data={"model": "tiny"}).json()["id"]
                service.wait(warm, timeout=120)
            report.rss_before_mb = report.rss_peak_mb = _rss_mb()

            def watch() -> None:
                with httpx.Client(base_url=url, timeout=30) as client:
                    while not stop.is_set():
                        report.rss_peak_mb = max(report.rss_peak_mb, _rss_mb())
                        queued = sum(view.state == "queued" for view in service.list())
                        report.most_queued_seen = max(report.most_queued_seen, queued)
                        with lock:
                            target = submitted[-1] if submitted else warm
                        start = time.perf_counter()
                        response = client.get(f"/api/v1/jobs/{target}")
                        elapsed = (time.perf_counter() - start) * 1000
                        if response.status_code == 200:
                            report.status_latencies_ms.append(elapsed)
                        time.sleep(0.02)

            def one(index: int) -> None:
                deadline = time.monotonic() + timeout
                with httpx.Client(base_url=url, timeout=60) as client:
                    while True:
                        response = client.post(
                            "/api/v1/convert", files={"file": (f"in{index}.wav", tone)},
                            data={"model": "tiny",
                                  "options": json.dumps({"transpose": index % 5})},
                        )
                        if response.status_code != 429 or time.monotonic() > deadline:
                            break
                        with lock:
                            report.refused_429 += 1
                        time.sleep(0.1)
                    if response.status_code != 202:
                        report.failures.append(f"{index}: submit {response.status_code}")
                        return
                    job_id = response.json()["id"]
                    with lock:
                        submitted.append(job_id)
                    view = service.wait(job_id, timeout=max(1.0, deadline - time.monotonic()))
                    if view.state != "done":
                        report.failures.append(f"{index}: {view.state} {view.error}")
                        return
                    result = client.get(f"/api/v1/jobs/{job_id}/results/0")
                    audio, rate = soundfile.read(io.BytesIO(result.content))
                    expected = (int(seconds * RATE),)
                    if rate != RATE or audio.shape != expected or not np.isfinite(audio).all():
                        report.failures.append(f"{index}: result {rate} Hz {audio.shape}")
                        return
                    with lock:
                        report.done += 1

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                list(pool.map(one, range(jobs)))
            report.wall_s = time.perf_counter() - start
            stop.set()
            watcher.join(10)
            report.peak_running = service.peak_running["conversion"]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--max-conversions", type=int, default=1)
    parser.add_argument("--max-queued", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=0.5, help="Length of each input.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        report = run_load(Path(folder), jobs=args.jobs, max_conversions=args.max_conversions,
                          max_queued=args.max_queued, seconds=args.seconds)
    print(report.summary())
    for failure in report.failures:
        print("failure:", failure)


if __name__ == "__main__":
    main()
