"""Tiny fake DiffSinger pitch banks (`ds_enhance` folders) built with onnx.helper.

The graphs have the real models' input/output names, dtypes and ranks for each export
version (see ../shared/design/dspitch.md sections 2 and 3.3), and behave in the ways
the tests check:

* SOME: notes are blocks of 16 frames of 512 samples (frames = N // 512 + 1, as SOME's
  centred STFT gives), the last block takes the remainder; a block is a rest when the
  largest per-frame mean |x| in it is below 1e-3; sung blocks cycle MIDI 60, 62, 64,
  65, 67 by block index, rests carry MIDI 0 (as real SOME); durations are seconds.
* linguistic: an embedding of the tokens; `ph_dur`, or `word_dur` spread over tokens
  by `word_div`, is added times 0, so a word division that does not cover the tokens
  fails inside onnxruntime, as with the real model.
* pitch: note MIDI spread over frames by `note_dur`, plus the encoder output spread by
  `ph_dur` and `pitch` (both times 0), so any disagreement of the three lengths is an
  onnxruntime error; a 5-tap sine smoothing (edge padding); plus `expr` times a
  0.3-semitone vibrato of period 20 frames (a frozen expr of 1 when the graph has no
  `expr`); plus `spk_embed[..., 0]` semitones; `pitch_pred = where(retake, out, pitch)`
  (DiffSinger's retake meaning).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HIDDEN = 16
SOME_HOP = 512
SOME_RATE = 44100
BLOCK = 16
CYCLE = (60.0, 62.0, 64.0, 65.0, 67.0)
VIBRATO = 0.3
PHONEMES = ["<PAD>", "AP", "SP", "a", "i", "u", "zh/a"]
LANGUAGES = {"zh": 1, "ja": 2}
OPSET = 17


class _Graph:
    """A minimal node list builder: each `op` returns the name of its one output."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def _name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, value: object, dtype: type = np.float32) -> str:
        name = self._name("const")
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs: object) -> str:
        name = out or self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [name], **attrs))
        return name

    def regulate(self, durations: str) -> str:
        """Durations [n] int64 -> index of the item each frame belongs to, [sum] int64."""
        ends = self.op("CumSum", durations, self.const(0, np.int64))
        total = self.op("ReduceSum", durations, keepdims=0)
        frames = self.op("Range", self.const(0, np.int64), total, self.const(1, np.int64))
        after = self.op(
            "GreaterOrEqual",
            self.op("Unsqueeze", frames, self.const([1], np.int64)),
            self.op("Unsqueeze", ends, self.const([0], np.int64)),
        )
        return self.op(
            "ReduceSum",
            self.op("Cast", after, to=TensorProto.INT64),
            self.const([1], np.int64),
            keepdims=0,
        )

    def squeeze0(self, name: str) -> str:
        return self.op("Squeeze", name, self.const([0], np.int64))

    def unsqueeze0(self, name: str, out: str | None = None) -> str:
        return self.op("Unsqueeze", name, self.const([0], np.int64), out=out)

    def times_zero(self, name: str) -> str:
        as_float = self.op("Cast", name, to=TensorProto.FLOAT)
        return self.op("Mul", as_float, self.const(0.0))

    def model(
        self,
        inputs: list[onnx.ValueInfoProto],
        outputs: list[onnx.ValueInfoProto],
        name: str,
    ) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def _tensor(name: str, dtype: int, shape: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def some_model() -> onnx.ModelProto:
    """Fake SOME: waveform f32 [1, n_samples] -> note_midi f32, note_rest bool,
    note_dur f32, each [1, n_notes]."""
    g = _Graph()
    i64 = np.int64
    samples = g.op("Gather", g.op("Shape", "waveform"), g.const(1, i64), axis=0)
    frames = g.op("Add", g.op("Div", samples, g.const(SOME_HOP, i64)), g.const(1, i64))
    pad = g.op("Sub", g.op("Mul", frames, g.const(SOME_HOP, i64)), samples)
    pads = g.op(
        "Concat",
        g.const([0, 0, 0], i64),
        g.op("Unsqueeze", pad, g.const([0], i64)),
        axis=0,
    )
    padded = g.op("Pad", "waveform", pads, g.const(0.0))
    framed = g.op("Reshape", padded, g.const([-1, SOME_HOP], i64))
    level = g.op("ReduceMean", g.op("Abs", framed), axes=[1], keepdims=0)
    notes = g.op("Div", g.op("Add", frames, g.const(BLOCK - 1, i64)), g.const(BLOCK, i64))
    block_pad = g.op("Sub", g.op("Mul", notes, g.const(BLOCK, i64)), frames)
    level_pads = g.op(
        "Concat", g.const([0], i64), g.op("Unsqueeze", block_pad, g.const([0], i64)), axis=0
    )
    padded_level = g.op("Pad", level, level_pads, g.const(0.0))
    blocks = g.op("Reshape", padded_level, g.const([-1, BLOCK], i64))
    loudest = g.op("ReduceMax", blocks, axes=[1], keepdims=0)
    rest = g.op("Less", loudest, g.const(1e-3))
    index = g.op("Range", g.const(0, i64), notes, g.const(1, i64))
    block_frames = g.op(
        "Min", g.op("Sub", frames, g.op("Mul", index, g.const(BLOCK, i64))), g.const(BLOCK, i64)
    )
    seconds = g.op(
        "Mul", g.op("Cast", block_frames, to=TensorProto.FLOAT), g.const(SOME_HOP / SOME_RATE)
    )
    midi = g.op("Gather", g.const(CYCLE), g.op("Mod", index, g.const(len(CYCLE), i64)), axis=0)
    midi = g.op("Where", rest, g.const(0.0), midi)
    g.unsqueeze0(midi, out="note_midi")
    g.unsqueeze0(rest, out="note_rest")
    g.unsqueeze0(seconds, out="note_dur")
    return g.model(
        [_tensor("waveform", TensorProto.FLOAT, [1, "n_samples"])],
        [
            _tensor("note_midi", TensorProto.FLOAT, [1, "n_notes"]),
            _tensor("note_rest", TensorProto.BOOL, [1, "n_notes"]),
            _tensor("note_dur", TensorProto.FLOAT, [1, "n_notes"]),
        ],
        "fake_some",
    )


def linguistic_model(*, word_mode: bool, languages: bool, vocabulary: int) -> onnx.ModelProto:
    """Fake linguistic encoder: tokens (+ ph_dur | word_div, word_dur) (+ languages) ->
    encoder_out f32 [1, n_tokens, HIDDEN], x_masks bool [1, n_tokens]."""
    g = _Graph()
    rng = np.random.default_rng(0)
    table = g.const(rng.standard_normal((vocabulary, HIDDEN)))
    encoded = g.op("Gather", table, "tokens", axis=0)  # [1, P, H]
    inputs = [_tensor("tokens", TensorProto.INT64, [1, "n_tokens"])]
    if word_mode:
        inputs += [
            _tensor("word_div", TensorProto.INT64, [1, "n_words"]),
            _tensor("word_dur", TensorProto.INT64, [1, "n_words"]),
        ]
        spread = g.op("Gather", g.squeeze0("word_dur"), g.regulate(g.squeeze0("word_div")), axis=0)
        extra = g.op("Unsqueeze", g.times_zero(spread), g.const([0, 2], np.int64))
    else:
        inputs.append(_tensor("ph_dur", TensorProto.INT64, [1, "n_tokens"]))
        extra = g.op("Unsqueeze", g.times_zero("ph_dur"), g.const([2], np.int64))
    encoded = g.op("Add", encoded, extra)
    if languages:
        inputs.append(_tensor("languages", TensorProto.INT64, [1, "n_tokens"]))
        language_table = g.const(rng.standard_normal((8, HIDDEN)))
        by_language = g.op("Gather", language_table, "languages", axis=0)
        encoded = g.op("Add", encoded, g.op("Mul", by_language, g.const(0.0)))
    g.op("Identity", encoded, out="encoder_out")
    g.op("Equal", "tokens", g.const(0, np.int64), out="x_masks")
    return g.model(
        inputs,
        [
            _tensor("encoder_out", TensorProto.FLOAT, [1, "n_tokens", HIDDEN]),
            _tensor("x_masks", TensorProto.BOOL, [1, "n_tokens"]),
        ],
        "fake_linguistic",
    )


def pitch_model(
    *,
    note_rest: bool,
    expr: bool,
    speaker: bool,
    acceleration: str,
    glide: bool = False,
    acceleration_rank: int = 0,
    extra_input: str | None = None,
    output_name: str = "pitch_pred",
) -> onnx.ModelProto:
    """Fake pitch model with the inputs of one export version (see the module doc)."""
    g = _Graph()
    i64 = np.int64
    f, b, i = TensorProto.FLOAT, TensorProto.BOOL, TensorProto.INT64
    inputs = [
        _tensor("encoder_out", f, [1, "n_tokens", HIDDEN]),
        _tensor("ph_dur", i, [1, "n_tokens"]),
        _tensor("note_midi", f, [1, "n_notes"]),
    ]
    if note_rest:
        inputs.append(_tensor("note_rest", b, [1, "n_notes"]))
    inputs.append(_tensor("note_dur", i, [1, "n_notes"]))
    if glide:
        inputs.append(_tensor("note_glide", i, [1, "n_notes"]))
    inputs.append(_tensor("pitch", f, [1, "n_frames"]))
    if expr:
        inputs.append(_tensor("expr", f, [1, "n_frames"]))
    inputs.append(_tensor("retake", b, [1, "n_frames"]))
    if speaker:
        inputs.append(_tensor("spk_embed", f, [1, "n_frames", HIDDEN]))
    inputs.append(_tensor(acceleration, i, [1] * acceleration_rank))
    if extra_input is not None:
        inputs.append(_tensor(extra_input, f, [1]))

    note_index = g.regulate(g.squeeze0("note_dur"))
    frame_midi = g.op("Gather", g.squeeze0("note_midi"), note_index, axis=0)
    condition = g.op("Gather", g.squeeze0("encoder_out"), g.regulate(g.squeeze0("ph_dur")), axis=0)
    condition = g.op("ReduceMean", condition, axes=[1], keepdims=0)
    given = g.squeeze0("pitch")
    x = g.op("Add", frame_midi, g.op("Mul", condition, g.const(0.0)))
    x = g.op("Add", x, g.op("Mul", given, g.const(0.0)))
    for name in ("note_rest", "note_glide") if note_rest or glide else ():
        if (name == "note_rest" and note_rest) or (name == "note_glide" and glide):
            spread = g.op("Gather", g.squeeze0(name), note_index, axis=0)
            x = g.op("Add", x, g.times_zero(spread))
    window = np.sin(np.arange(1, 6) * math.pi / 6)
    window = (window / window.sum()).astype(np.float32).reshape(1, 1, 5)
    column = g.op("Unsqueeze", x, g.const([0, 1], i64))
    padded = g.op("Pad", column, g.const([0, 0, 2, 0, 0, 2], i64), mode="edge")
    base = g.op("Squeeze", g.op("Conv", padded, g.const(window)), g.const([0, 1], i64))
    count = g.op("Gather", g.op("Shape", x), g.const(0, i64), axis=0)
    frame = g.op("Cast", g.op("Range", g.const(0, i64), count, g.const(1, i64)), to=f)
    phase = g.op("Mul", frame, g.const(2 * math.pi / 20))
    vibrato = g.op("Mul", g.op("Sin", phase), g.const(VIBRATO))
    if expr:
        vibrato = g.op("Mul", vibrato, g.squeeze0("expr"))
    out = g.op("Add", base, vibrato)
    if speaker:
        shift = g.squeeze0(g.op("Gather", "spk_embed", g.const(0, i64), axis=2))
        out = g.op("Add", out, shift)
    out = g.op("Add", out, g.times_zero(acceleration))
    if extra_input is not None:
        out = g.op("Add", out, g.op("Mul", extra_input, g.const(0.0)))
    chosen = g.op("Where", g.squeeze0("retake"), out, given)
    g.unsqueeze0(chosen, out=output_name)
    return g.model(inputs, [_tensor(output_name, f, [1, "n_frames"])], "fake_pitch")


@dataclass(frozen=True)
class Variant:
    """One export version of the pitch bank."""

    word_mode: bool
    note_rest: bool
    expr: bool
    speaker: bool
    acceleration: str
    languages: bool = False
    glide: bool = False
    phonemes_json: bool = False


VARIANTS: dict[str, Variant] = {
    "v2023": Variant(
        word_mode=False, note_rest=True, expr=True, speaker=False, acceleration="speedup"
    ),
    "v2024": Variant(
        word_mode=True, note_rest=False, expr=True, speaker=False, acceleration="steps"
    ),
    "v2025": Variant(
        word_mode=True, note_rest=True, expr=True, speaker=True, acceleration="steps",
        languages=True, phonemes_json=True,
    ),
    "noexpr": Variant(
        word_mode=False, note_rest=True, expr=False, speaker=False, acceleration="speedup"
    ),
    "glide": Variant(
        word_mode=False, note_rest=True, expr=True, speaker=False, acceleration="steps", glide=True
    ),
}
"""The export versions of dspitch.md section 3.3 (v2023: ph_dur, note_rest, expr,
speedup; v2024: word mode, steps; v2025: word mode, languages, spk_embed,
phonemes.json; noexpr: a frozen expr; glide: note_glide exposed)."""


def write_bank(
    folder: Path,
    variant: Variant | str = "v2023",
    *,
    sample_rate: int = 44100,
    hop_size: int = 512,
    layout: str = "fork",
    pitch: onnx.ModelProto | None = None,
    phonemes: list[str] | None = None,
    with_some: bool = True,
) -> Path:
    """Write a fake ds_enhance folder and return it.

    layout "fork": the fork's fixed names (ds_linguistic.onnx, ds_pitch.onnx, SOME.onnx)
    and a dsconfig without model keys; "exporter": DiffSinger exporter names
    (`bank.linguistic.onnx`, ...) named by dsconfig keys, SOME through some.yaml.
    """
    if isinstance(variant, str):
        variant = VARIANTS[variant]
    folder.mkdir(parents=True, exist_ok=True)
    names = phonemes if phonemes is not None else PHONEMES
    exporter = layout == "exporter"
    config: dict[str, object] = {"sample_rate": sample_rate, "hop_size": hop_size}
    linguistic_name = "bank.linguistic.onnx" if exporter else "ds_linguistic.onnx"
    pitch_name = "bank.pitch.onnx" if exporter else "ds_pitch.onnx"
    if exporter:
        config.update(linguistic=linguistic_name, pitch=pitch_name)
    if variant.phonemes_json:
        phoneme_file = "bank.phonemes.json" if exporter else "phonemes.json"
        (folder / phoneme_file).write_text(json.dumps({p: k for k, p in enumerate(names)}))
        config["phonemes"] = phoneme_file
    else:
        (folder / "phonemes.txt").write_text("\n".join(names) + "\n")
    if variant.languages:
        (folder / "languages.json").write_text(json.dumps(LANGUAGES))
        config.update(languages="languages.json", use_lang_id=True)
    if variant.speaker:
        config["speakers"] = ["spk.alto", "spk.tenor"]
        for name, value in (("spk.alto", 0.0), ("spk.tenor", 1.0)):
            embedding = np.zeros(HIDDEN, dtype="<f4")
            embedding[0] = value
            embedding.tofile(folder / f"{name}.emb")
    config.update(
        hidden_size=HIDDEN,
        predict_dur=variant.word_mode,
        use_expr=variant.expr,
        use_note_rest=variant.note_rest,
        use_continuous_acceleration=variant.acceleration == "steps",
    )
    import yaml

    (folder / "dsconfig.yaml").write_text(yaml.safe_dump(config))
    onnx.save(
        linguistic_model(
            word_mode=variant.word_mode, languages=variant.languages, vocabulary=len(names)
        ),
        folder / linguistic_name,
    )
    model = pitch if pitch is not None else pitch_model(
        note_rest=variant.note_rest,
        expr=variant.expr,
        speaker=variant.speaker,
        acceleration=variant.acceleration,
        glide=variant.glide,
    )
    onnx.save(model, folder / pitch_name)
    if with_some:
        if exporter:
            (folder / "some").mkdir(exist_ok=True)
            onnx.save(some_model(), folder / "some" / "model.onnx")
            (folder / "some.yaml").write_text("model: some/model.onnx\nsample_rate: 44100\n")
        else:
            onnx.save(some_model(), folder / "SOME.onnx")
    return folder


def sine_wave(sample_rate: int = 44100, seconds: float = 3.0) -> np.ndarray:
    """A 220 Hz sine (amplitude 0.5) with silence from 1.2 s to 1.8 s, float32."""
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    wave = 0.5 * np.sin(2 * np.pi * 220.0 * time)
    wave[(time >= 1.2) & (time < 1.8)] = 0.0
    return wave.astype(np.float32)


def some_notes(folder: Path, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the bank's fake SOME on a 44.1 kHz wave: (midi f32 [n], rest bool [n],
    seconds f32 [n]), the notes the extractor works from."""
    import onnxruntime

    path = folder / "SOME.onnx"
    if not path.is_file():
        path = folder / "some" / "model.onnx"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    midi, rest, seconds = session.run(
        ["note_midi", "note_rest", "note_dur"], {"waveform": wave[None].astype(np.float32)}
    )
    return midi[0], rest[0], seconds[0]
