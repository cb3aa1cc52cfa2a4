"""The settings of a live stream, defined once for `sovits live`, the live WebSocket
and the web UI's Live tab.

`LiveSettings` holds what a user sets (milliseconds, on/off switches), each field with
its OptionSpec (`sovits.config.options_schema`): the CLI flags, the start message's
keys and the Live tab's widgets are generated from these fields and nowhere restated.
`LiveSettings.stream_settings()` turns them into the library's StreamSettings and
GateSettings (seconds). This module imports no torch, so the CLI can build its options
from it while `sovits --help` stays instant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sovits.config.options_schema import option, option_specs
from sovits.errors import InputError
from sovits.inference.gate import GateSettings

if TYPE_CHECKING:
    from sovits.inference.streaming import StreamSettings

__all__ = ["LiveSettings"]


def _ms(name: str, help: str, **kw: Any) -> Any:
    """A live time setting in milliseconds (flag `--{name}`, dashes for underscores)."""
    flag = "--" + name.replace("_", "-")
    return field(default=kw.pop("default", None),
                 metadata=option(help, flags=(flag,), unit="ms", **kw))


@dataclass(frozen=True)
class LiveSettings:
    """The settings of a live stream as a user gives them: the one definition behind
    `sovits live`'s flags, the live WebSocket's start message and the web UI's Live
    tab (each generated from these fields' OptionSpecs). Times in milliseconds.

    None (block_ms ... search_ms, f0_context_ms) takes the default of StreamSettings,
    or of LOW_LATENCY when `low_latency` is set. `stream_settings()` builds the
    StreamSettings (seconds) with its GateSettings.
    """

    block_ms: float | None = _ms(
        "block_ms", "Block size (default 100; 50 with --low-latency)",
        minimum=5.0, maximum=5000.0)
    low_latency: bool = field(default=False, metadata=option(
        "The low-latency setting (<= 100 ms algorithmic): its block, context, crossfade "
        "and search where none is given", flags=("--low-latency",)))
    gate: bool = field(default=True, metadata=option(
        "The singing-safe silence gate (--no-gate turns it off)", flags=("--gate/--no-gate",)))
    context_ms: float | None = _ms(
        "context_ms", "Left context of the content units (default 1000; 500 with "
        "--low-latency)", minimum=0.0, maximum=30000.0, group="advanced")
    f0_context_ms: float | None = _ms(
        "f0_context_ms", "Left context of each f0 extraction (default 300)",
        minimum=0.0, maximum=10000.0, group="advanced")
    crossfade_ms: float | None = _ms(
        "crossfade_ms", "SOLA crossfade at block joins (default 20; 10 with --low-latency)",
        minimum=0.0, maximum=1000.0, group="advanced")
    search_ms: float | None = _ms(
        "search_ms", "SOLA search range (default 10; 5 with --low-latency)",
        minimum=0.0, maximum=1000.0, group="advanced")
    lookahead_ms: float = _ms(
        "lookahead_ms", "Right context before a frame is rendered (adds to the latency)",
        default=0.0, minimum=0.0, maximum=2000.0, group="advanced")
    decoder_margin: int | None = field(default=None, metadata=option(
        "Decoder left margin (default: the model's receptive field, exact; smaller is "
        "faster)", flags=("--decoder-margin",), minimum=0, unit="frames", group="advanced"))
    gate_db: float = field(default=-50.0, metadata=option(
        "Gate: frames below this RMS are silence", flags=("--gate-db",), minimum=-120.0,
        maximum=0.0, unit="dBFS", group="advanced"))
    gate_hangover_ms: float = _ms(
        "gate_hangover_ms", "Gate: stays open this long after sound", default=500.0,
        minimum=0.0, maximum=10000.0, group="advanced")
    vad: bool = field(default=True, metadata=option(
        "Gate with silero-vad (--no-vad: by loudness and pitch only)",
        flags=("--vad/--no-vad",), group="advanced"))

    def __post_init__(self) -> None:
        for item, spec in option_specs(LiveSettings):
            value = getattr(self, item.name)
            if value is None or isinstance(value, bool):
                continue
            low = -math.inf if spec.minimum is None else spec.minimum
            high = math.inf if spec.maximum is None else spec.maximum
            if not math.isfinite(value) or not low <= value <= high:
                bounds = f"at least {low:g}" if high == math.inf else f"within {low:g}..{high:g}"
                raise InputError(f"{item.name} must be {bounds} {spec.unit}, got {value}")

    def stream_settings(self) -> StreamSettings:
        """The StreamSettings (seconds) and gate these settings describe."""
        from sovits.inference.streaming import LOW_LATENCY, StreamSettings

        base = LOW_LATENCY if self.low_latency else StreamSettings()
        chosen: dict[str, Any] = {}
        for name in ("block", "context", "f0_context", "crossfade", "search"):
            value = getattr(self, f"{name}_ms")
            if value is not None:
                chosen[f"{name}_seconds"] = value / 1000.0
        chosen["lookahead_seconds"] = self.lookahead_ms / 1000.0
        chosen["decoder_margin"] = self.decoder_margin
        chosen["gate"] = GateSettings(
            silence_db=self.gate_db, hangover_seconds=self.gate_hangover_ms / 1000.0,
            use_vad=self.vad,
        ) if self.gate else None
        return replace(base, **chosen)
