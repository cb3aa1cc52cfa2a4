"""Loaded by the training job's child process in the web UI training test only (the test
puts this folder on PYTHONPATH): gives the trainer the tiny test discriminator, as the
training tests do, since the real one (47 M parameters) takes tens of seconds per CPU
step and writes half a gigabyte per checkpoint."""

from __future__ import annotations

import os

if os.environ.get("SOVITS_TEST_TINY_DISCRIMINATOR") == "1":
    from tests.training.tiny import tiny_discriminator as _tiny_discriminator

    from sovits.training import trainer as _trainer

    _trainer.build_discriminator = _tiny_discriminator
