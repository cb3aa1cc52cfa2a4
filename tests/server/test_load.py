"""A bounded loopback load test: 20 concurrent conversion submissions of the tiny model
all finish with correct results; the queue limit and the running limit hold; memory
stays bounded. (Figures: `python -m tests.server.load`.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.load import run_load

pytestmark = pytest.mark.timeout(300)


def test_twenty_concurrent_conversions_all_finish_correctly(tmp_path: Path) -> None:
    report = run_load(tmp_path, jobs=20, max_conversions=1, max_queued=8, seconds=0.3,
                      timeout=240)
    assert report.failures == [] and report.done == 20, report.summary()
    assert report.peak_running == 1
    assert report.most_queued_seen <= 8
    assert report.refused_429 > 0  # 20 clients against 8 places: the limit was reached
    assert report.rss_peak_mb - report.rss_before_mb < 400, report.summary()
    assert report.status_latencies_ms, "the status poller made no call"
