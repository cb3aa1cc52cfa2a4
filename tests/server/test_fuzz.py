"""Schemathesis fuzzes the live server's OpenAPI spec: no request may cause a 500.

Bounded: a handful of generated requests per operation, no deadline per example.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from sovits.api import JobService
from sovits.server import create_app
from tests.api.helpers import make_models_root
from tests.server.live import serving

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    models_root = make_models_root(tmp_path_factory.mktemp("models"))
    work: Path = tmp_path_factory.mktemp("work")
    with JobService(models_root, work, max_queued=4) as service:
        app = create_app(service, token=None, allowed_hosts=None, with_ui=False,
                         max_upload_bytes=1_000_000, max_audio_seconds=5.0)
        with serving(app) as url:
            yield schemathesis.openapi.from_url(f"{url}/openapi.json")


def test_no_request_causes_a_server_error(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20
    calls: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case: Any) -> None:
            response = case.call_and_validate(checks=[not_a_server_error], timeout=30)
            calls.append(f"{case.method} {case.path} {response.status_code}")

        fuzz()
    assert len(calls) >= 2 * len(operations)
