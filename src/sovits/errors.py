"""The SovitsError family: what went wrong, where, and how to fix it.

Every error a user can cause (a bad config, a wrong checkpoint, unreadable audio)
is raised as a SovitsError so shells can print one clear line instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path


class SovitsError(Exception):
    """Base of every error sovits raises on purpose.

    `where` names the file or key the problem is in; `hint` says how to fix it.
    """

    def __init__(self, message: str, *, where: str | Path | None = None, hint: str | None = None):
        self.message = message
        self.where = str(where) if where is not None else None
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigError(SovitsError):
    """A config file is missing keys, has unknown keys, or has values of the wrong type."""


class CheckpointError(SovitsError):
    """A checkpoint cannot be read or does not fit the model it is loaded into."""


class InputError(SovitsError):
    """Input data (audio, f0, speaker, options) is unusable."""


class MissingFileError(SovitsError):
    """A required file (usually pretrained weights) is not where sovits looks for it."""


class MissingExtraError(SovitsError):
    """An optional dependency (one of sovits' pip extras) is not installed."""


def missing_extra(package: str, extra: str, purpose: str) -> MissingExtraError:
    """The error for a missing optional package: names the extra that installs it.

    package: the pip name of what is missing ("faiss-cpu"); extra: the sovits extra that
    brings it ("retrieval"); purpose: what needs it ("feature retrieval"). Raise it from
    the ImportError: `raise missing_extra(...) from error`.
    """
    return MissingExtraError(
        f"{purpose} needs the {package} package, which is not installed",
        hint=f'pip install "sovits[{extra}]"',
    )
