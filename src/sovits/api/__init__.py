"""The job layer every shell uses: conversion, f0, evaluation, training and tool jobs.

`JobService` queues and runs jobs over the library; the CLI, the HTTP API and the web
UI submit jobs and show `JobView`s, never re-implementing a step. Importing this
package loads no model library (torch is imported when a job runs).
"""

from __future__ import annotations

from sovits.api.jobs import JOB_KINDS, JobError, JobService, JobView
from sovits.api.models import ModelInfo

__all__ = ["JOB_KINDS", "JobError", "JobService", "JobView", "ModelInfo"]
