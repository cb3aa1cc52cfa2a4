"""The parameters of each job kind, one dataclass each, described by OptionSpecs.

A "convert" job's parameters are `ConvertParams` plus `options`, the fields of
`sovits.inference.options.ConvertOptions` by name. The HTTP API's request models and
the web UI's forms are made from these classes (`sovits.config.options_schema`).
Model names are folder names under the models root; other paths are taken inside the
work folder (then the models root) and confined there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sovits.config.options_schema import option
from sovits.features.content.registry import encoder_names
from sovits.inference.options import F0_METHODS

__all__ = [
    "JOB_PARAMS",
    "CompressParams",
    "ConvertParams",
    "EvaluateParams",
    "ExportOnnxParams",
    "F0Params",
    "InspectParams",
    "MergeParams",
    "PrepareParams",
    "PreprocessParams",
    "ResampleParams",
    "TrainClusterParams",
    "TrainIndexParams",
    "TrainParams",
]

_MODEL_HELP = "Model folder name under the models root."


@dataclass(frozen=True, kw_only=True)
class ConvertParams:
    """A conversion of one audio file with one model (plus `options`: ConvertOptions)."""

    model: str = field(metadata=option(_MODEL_HELP, flags=("--model", "-m")))
    input: Path = field(
        metadata=option("Audio file to convert.", flags=("--input", "-n"), path_kind="file")
    )


@dataclass(frozen=True, kw_only=True)
class F0Params:
    """Extract the f0 curve of an audio file (`sovits f0`)."""

    input: Path = field(metadata=option("Audio file.", flags=("--input",), path_kind="file"))
    method: str = field(
        default="pm",
        metadata=option("f0 method.", flags=("--f0-method", "-f0p", "--f0_predictor"),
                        choices=F0_METHODS, group="pitch"),
    )
    hop: int = field(default=512, metadata=option("Samples between frames.", flags=("--hop",),
                                                  minimum=1, maximum=65536, group="pitch"))
    transpose: float = field(
        default=0.0,
        metadata=option("Shift the f0 by this many semitones.", flags=("--transpose", "-t"),
                        minimum=-48.0, maximum=48.0, unit="semitones", group="pitch"),
    )
    sample_rate: int = field(
        default=44100,
        metadata=option("Rate to analyse the audio at.", flags=("--sample-rate", "-sr"),
                        minimum=8000, maximum=192000, unit="Hz", group="pitch"),
    )
    format: str = field(
        default="csv",
        metadata=option("Curve file format.", flags=("--format",), choices=("csv", "npy"),
                        group="output"),
    )


@dataclass(frozen=True, kw_only=True)
class EvaluateParams:
    """Measure a conversion (`sovits evaluate`)."""

    source: Path = field(metadata=option("The audio that was converted.", path_kind="file"))
    converted: Path = field(metadata=option("The conversion of source.", path_kind="file"))
    target_refs: list[Path] = field(
        default_factory=list,
        metadata=option("Clips of the target singer.", flags=("--target-ref",), path_kind="file"),
    )
    transpose: float = field(
        default=0.0,
        metadata=option("Semitones the source was transposed by.", flags=("--transpose", "-t"),
                        minimum=-48.0, maximum=48.0, unit="semitones"),
    )
    method: str = field(
        default="auto",
        metadata=option("f0 method both sides are measured with; auto: the most accurate "
                        "one installed (swift, else fcpe, else harvest).",
                        flags=("--f0-method", "-f0p", "--f0_predictor"),
                        choices=("auto", *F0_METHODS), group="pitch"),
    )
    speaker_similarity: bool = field(
        default=True,
        metadata=option("Speaker similarity by Resemblyzer's encoder (needs its weights).",
                        flags=("--speaker-similarity",)),
    )


@dataclass(frozen=True, kw_only=True)
class InspectParams:
    """Describe a model (`sovits inspect`)."""

    model: str = field(metadata=option(_MODEL_HELP))


@dataclass(frozen=True, kw_only=True)
class MergeParams:
    """Blend models of one architecture (`sovits merge`); the result is a job file."""

    models: list[str] = field(metadata=option("Two or more model folder names."))
    rates: list[float] | None = field(
        default=None,
        metadata=option("Percentage of each model, in order (default: equal).",
                        flags=("--rate", "-r"), minimum=0.0),
    )
    mode: str = field(
        default="convex",
        metadata=option("convex: softmax(rate/100); linear: rate/100.", flags=("--mode",),
                        choices=("convex", "linear")),
    )


@dataclass(frozen=True, kw_only=True)
class CompressParams:
    """Drop what only training needs (`sovits compress`); the result is a job file."""

    model: str = field(metadata=option(_MODEL_HELP))
    half: bool = field(default=False, metadata=option("Store float16.", flags=("--half", "-hf")))
    release: bool = field(
        default=False, metadata=option("Write a sovits safetensors release.", flags=("--release",))
    )


@dataclass(frozen=True, kw_only=True)
class ExportOnnxParams:
    """Export to ONNX for MoeVoiceStudio (`sovits export-onnx`); results are job files."""

    model: str = field(metadata=option(_MODEL_HELP))
    speaker_mix: bool = field(
        default=False, metadata=option("Per-frame speaker weights.", flags=("--speaker-mix",))
    )
    opset: int = field(
        default=16, metadata=option("ONNX opset.", flags=("--opset",), minimum=11, maximum=20,
                                    group="advanced")
    )


@dataclass(frozen=True, kw_only=True)
class TrainClusterParams:
    """Fit the k-means cluster model of a preprocessed dataset, written next to the model."""

    model: str = field(metadata=option(_MODEL_HELP))
    dataset: Path = field(
        metadata=option("Preprocessed dataset folder.", flags=("--dataset",), path_kind="folder")
    )
    n_clusters: int = field(
        default=10000,
        metadata=option("Clusters per speaker.", flags=("--n-clusters",), minimum=1,
                        maximum=100000),
    )
    minibatch: bool = field(default=False, metadata=option("MiniBatchKMeans.",
                                                           flags=("--minibatch",)))
    seed: int = field(default=0, metadata=option("Random seed.", flags=("--seed",)))


@dataclass(frozen=True, kw_only=True)
class TrainIndexParams:
    """Build the feature-retrieval index of a preprocessed dataset, next to the model."""

    model: str = field(metadata=option(_MODEL_HELP))
    dataset: Path = field(
        metadata=option("Preprocessed dataset folder.", flags=("--dataset",), path_kind="folder")
    )
    seed: int = field(default=0, metadata=option("Random seed.", flags=("--seed",)))


@dataclass(frozen=True, kw_only=True)
class ResampleParams:
    """Resample a folder of recordings for training (`sovits resample`): <speaker>/* ->
    `output`/<speaker>/*.wav, mono 16-bit at the model's rate, loudness-normalised.

    The model folder need not exist yet; when it holds a config.json its rate is used.
    """

    model: str = field(metadata=option("Model folder under the models root (its "
                                       "config.json's rate is used when it has one)."))
    dataset: Path = field(
        default=Path("dataset_raw"),
        metadata=option("Folder of <speaker>/ recordings.", flags=("--in-dir",),
                        path_kind="folder"),
    )
    output: Path = field(
        default=Path("dataset/44k"),
        metadata=option("Folder to write <speaker>/*.wav into (made when missing).",
                        flags=("--output", "-o"), path_kind="folder"),
    )
    sample_rate: int | None = field(
        default=None,
        metadata=option("Output rate (default: the model config's, else 44100).",
                        flags=("--sample-rate",), minimum=8000, maximum=192000, unit="Hz"),
    )
    skip_loudnorm: bool = field(
        default=False, metadata=option("Keep the clips' loudness.", flags=("--skip-loudnorm",))
    )
    target_lufs: float = field(
        default=-23.0,
        metadata=option("Loudness target.", flags=("--target-lufs",), minimum=-70.0,
                        maximum=0.0, unit="LUFS", group="advanced"),
    )
    true_peak: float = field(
        default=-1.0,
        metadata=option("True-peak ceiling.", flags=("--true-peak",), minimum=-20.0,
                        maximum=0.0, unit="dBTP", group="advanced"),
    )
    overwrite: bool = field(
        default=False, metadata=option("Redo outputs that already exist.",
                                       flags=("--overwrite",), group="advanced")
    )
    num_processes: int = field(
        default=1, metadata=option("Worker processes (0: one per CPU).",
                                   flags=("--num-processes",), minimum=0, maximum=64,
                                   group="advanced")
    )


@dataclass(frozen=True, kw_only=True)
class PrepareParams:
    """Split a resampled dataset into filelists and write the model folder's config.json
    and diffusion.yaml (`sovits preprocess-config`).

    The filelists go into the model folder (`filelists/train.txt`, `val.txt`) and name
    the clips by absolute path, so training finds them from any working folder.
    """

    model: str = field(metadata=option("Model folder to write (made when missing)."))
    dataset: Path = field(
        default=Path("dataset/44k"),
        metadata=option("Resampled folder of <speaker>/*.wav.", flags=("--source-dir",),
                        path_kind="folder"),
    )
    speech_encoder: str = field(
        default="vec768l12",
        metadata=option("Content encoder.", flags=("--speech-encoder",),
                        choices=encoder_names()),
    )
    tiny: bool = field(default=False, metadata=option("The 4.1 tiny model template.",
                                                      flags=("--tiny",)))
    vol_aug: bool = field(default=False, metadata=option(
        "Volume embedding + augmentation.", flags=("--vol-aug",)))
    overwrite: bool = field(
        default=False,
        metadata=option("Replace the folder's existing config.json.", flags=("--overwrite",)),
    )
    val_per_speaker: int = field(
        default=2, metadata=option("Validation clips per speaker.", flags=("--val-per-speaker",),
                                   minimum=1, maximum=100, group="advanced")
    )
    seed: int = field(default=1234, metadata=option("Seed of the train/val shuffle.",
                                                    flags=("--seed",), group="advanced"))


@dataclass(frozen=True, kw_only=True)
class PreprocessParams:
    """Compute the training features of a dataset (`sovits preprocess`), in a child process."""

    model: str = field(metadata=option("Model folder whose config.json is used."))
    dataset: Path = field(
        metadata=option("Folder of <speaker>/*.wav.", flags=("--in-dir",), path_kind="folder")
    )
    f0_method: str = field(
        default="rmvpe",
        metadata=option("f0 method.", flags=("--f0-method", "-f0p", "--f0_predictor"),
                        choices=F0_METHODS, group="pitch"),
    )
    use_diff: bool = field(default=False, metadata=option("Also the diffusion features.",
                                                          flags=("--use-diff",)))
    num_processes: int = field(
        default=1, metadata=option("Worker processes (0: one per CPU).",
                                   flags=("--num-processes",), minimum=0, maximum=64)
    )


@dataclass(frozen=True, kw_only=True)
class TrainParams:
    """Train (or resume) the model in a model folder (`sovits train`), in a child process.

    The folder's config.json names the filelists (relative to the work folder);
    checkpoints go into the folder.
    """

    model: str = field(metadata=option("Model folder to train in (holds config.json)."))
    max_steps: int | None = field(
        default=None,
        metadata=option("Stop after this many global steps.", flags=("--max-steps",), minimum=1),
    )
    accelerator: str = field(
        default="auto",
        metadata=option("Lightning accelerator.", flags=("--accelerator",),
                        choices=("auto", "cpu", "cuda", "mps"), group="advanced"),
    )
    num_workers: int = field(
        default=0,
        metadata=option("Data loader processes (0: load in the training process).",
                        flags=("--num-workers",), minimum=0, maximum=32, group="advanced"),
    )


JOB_PARAMS: dict[str, type] = {
    "convert": ConvertParams,
    "f0": F0Params,
    "evaluate": EvaluateParams,
    "inspect": InspectParams,
    "merge": MergeParams,
    "compress": CompressParams,
    "export-onnx": ExportOnnxParams,
    "train-cluster": TrainClusterParams,
    "train-index": TrainIndexParams,
    "resample": ResampleParams,
    "prepare": PrepareParams,
    "preprocess": PreprocessParams,
    "train": TrainParams,
}
"""Job kind -> its parameter class."""
