"""Where pretrained weight files live: one resolver and the registry of known files.

Lookup order for a known file (see `resolve_weights`):

1. the explicit path the caller gives (no fallback when it is missing);
2. `$SOVITS_HOME/<relative path>`;
3. the user cache directory (`platformdirs.user_cache_dir("sovits")`) `/<relative path>`;
4. for files that a Python package ships (torchfcpe's FCPE weights), that package's
   folder, found without importing it.

Relative paths follow so-vits-svc's own layout (`pretrain/rmvpe.pt`, ...), so
`SOVITS_HOME` may point straight at an existing so-vits-svc folder. sovits downloads
only when asked (`sovits pretrained fetch NAME`, `sovits.features.download.fetch`, which
use each entry's `downloads`); a missing file raises one MissingFileError that says what
the file is, where to put it and where to get it.

To add a file (ContentVec, HuBERT-soft, NSF-HiFiGAN, ...), add one `PretrainedFile` to
`KNOWN_FILES`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from sovits.errors import MissingFileError

HOME_VARIABLE = "SOVITS_HOME"
"""Environment variable naming the folder searched before the user cache."""


@dataclass(frozen=True)
class Download:
    """One direct download of a pretrained file.

    url: an https URL that serves the bytes themselves (not a web page).
    sha256: hex SHA-256 of the bytes at `url` as published by a reliable source (for an
        archive: of the archive), or None when no such value is known.
    member: for a zip archive, the base name of the archive member that becomes the file
        (e.g. "model.pt" inside rmvpe.zip); None for a plain file.
    siblings: for a zip archive, also extract every other file in that member's archive
        folder next to the file, under its own name (e.g. NSF-HiFiGAN's config.json).
    """

    url: str
    sha256: str | None = None
    member: str | None = None
    siblings: bool = False


@dataclass(frozen=True)
class PretrainedFile:
    """A weight file sovits can use but does not ship.

    name: registry key, e.g. "rmvpe.pt".
    relative_path: where it goes below `$SOVITS_HOME` or the user cache, in so-vits-svc's
        layout (POSIX separators).
    description: what the file is, for error messages.
    urls: where users get it, preferred first.
    instructions: how to turn the download into the file (unzip, rename), if needed.
    package, package_path: an installed Python package that ships the file, and the
        file's path inside the package folder (searched last).
    downloads: direct downloads `sovits pretrained fetch` may use, preferred first.
    used_for: what needs the file besides the speech encoders, which `file_uses` adds
        from the encoder registry (e.g. "f0 method rmvpe (-f0p rmvpe)").
    approx_megabytes: the download's size in MB (10^6 bytes), roughly; None when not
        known before downloading.
    """

    name: str
    relative_path: str
    description: str
    urls: tuple[str, ...]
    instructions: str = ""
    package: str | None = None
    package_path: str | None = None
    downloads: tuple[Download, ...] = ()
    used_for: tuple[str, ...] = ()
    approx_megabytes: float | None = None


KNOWN_FILES: Mapping[str, PretrainedFile] = MappingProxyType(
    {
        "rmvpe.pt": PretrainedFile(
            name="rmvpe.pt",
            relative_path="pretrain/rmvpe.pt",
            description="RMVPE pitch-extractor weights (yxlllc/RMVPE, E2E0 with 4 blocks)",
            urls=(
                "https://github.com/yxlllc/RMVPE/releases/download/230917/rmvpe.zip",
                "https://huggingface.co/datasets/ylzz1997/rmvpe_pretrain_model/resolve/main/rmvpe.pt",
            ),
            instructions="from rmvpe.zip, rename model.pt to rmvpe.pt",
            used_for=("f0 method rmvpe (-f0p rmvpe, preprocess --f0-method rmvpe)",),
            approx_megabytes=181,
            downloads=(
                Download(
                    "https://github.com/yxlllc/RMVPE/releases/download/230917/rmvpe.zip",
                    member="model.pt",
                ),
                Download(
                    "https://huggingface.co/datasets/ylzz1997/rmvpe_pretrain_model/resolve/main/rmvpe.pt"
                ),
            ),
        ),
        "fcpe.pt": PretrainedFile(
            name="fcpe.pt",
            relative_path="pretrain/fcpe.pt",
            description="FCPE pitch-extractor weights as so-vits-svc 4.1 uses them (CNChTu/MelPE)",
            used_for=("f0 method fcpe, only when passed as its model file (the default is "
                      "fcpe_c_v001.pt)",),
            urls=(
                "https://huggingface.co/datasets/ylzz1997/rmvpe_pretrain_model/resolve/main/fcpe.pt",
            ),
            downloads=(
                Download(
                    "https://huggingface.co/datasets/ylzz1997/rmvpe_pretrain_model/resolve/main/fcpe.pt"
                ),
            ),
        ),
        "fcpe_c_v001.pt": PretrainedFile(
            name="fcpe_c_v001.pt",
            relative_path="pretrain/fcpe_c_v001.pt",
            description="FCPE pitch-extractor weights bundled with torchfcpe (CFNaiveMelPE)",
            urls=("https://pypi.org/project/torchfcpe/0.0.4/",),
            instructions=(
                "install the package that ships it with "
                "`pip install --no-deps torchfcpe==0.0.4` (sovits never imports it)"
            ),
            package="torchfcpe",
            package_path="assets/fcpe_c_v001.pt",
            used_for=("f0 method fcpe (-f0p fcpe), its default weights",
                      "`sovits evaluate -m auto` without swift-f0 installed"),
        ),
        # vocoder (NSF-HiFiGAN enhancer and shallow diffusion)
        "nsf_hifigan": PretrainedFile(
            name="nsf_hifigan",
            relative_path="pretrain/nsf_hifigan/model",
            description="NSF-HiFiGAN vocoder (openvpi nsf_hifigan_20221211), "
            "with its config.json beside it",
            urls=(
                "https://github.com/openvpi/vocoders/releases/download/nsf-hifigan-v1/"
                "nsf_hifigan_20221211.zip",
                "https://github.com/openvpi/vocoders/releases/tag/nsf-hifigan-v1",
            ),
            instructions="unzip nsf_hifigan_20221211.zip and put its files (model, "
            "config.json, ...) in pretrain/nsf_hifigan",
            used_for=("the enhancer (infer -eh)", "shallow diffusion (infer -shd / -od)",
                      "diffusion training (train-diff)"),
            downloads=(
                Download(
                    "https://github.com/openvpi/vocoders/releases/download/nsf-hifigan-v1/"
                    "nsf_hifigan_20221211.zip",
                    member="model",
                    siblings=True,
                ),
            ),
        ),
        # content encoders (sovits.features.content)
        "checkpoint_best_legacy_500.pt": PretrainedFile(
            name="checkpoint_best_legacy_500.pt",
            relative_path="pretrain/checkpoint_best_legacy_500.pt",
            description="ContentVec speech encoder (fairseq HuBERT; vec768l12, vec256l9)",
            urls=(
                "https://ibm.box.com/s/z1wgl1stco8ffooyatzdwsqn2psd9lrr",
                "https://huggingface.co/lj1995/VoiceConversionWebUI/resolve/main/hubert_base.pt",
            ),
            instructions="RVC's hubert_base.pt is the same network: rename it to "
            "checkpoint_best_legacy_500.pt",
            approx_megabytes=190,
            downloads=(
                # sha256 of RVC's hubert_base.pt as RVC-Project's .env checks it
                # (sha256_hubert_base_pt); fetch saves it under this entry's name.
                Download(
                    "https://huggingface.co/lj1995/VoiceConversionWebUI/resolve/main/hubert_base.pt",
                    sha256="f54b40fd2802423a5643779c4861af1e9ee9c1564dc9d32f54f20b5ffba7db96",
                ),
            ),
        ),
        "hubert-soft-0d54a1f4.pt": PretrainedFile(
            name="hubert-soft-0d54a1f4.pt",
            relative_path="pretrain/hubert-soft-0d54a1f4.pt",
            description="HuBERT-soft speech encoder (bshall/hubert; hubertsoft)",
            urls=("https://github.com/bshall/hubert/releases/download/v0.1/hubert-soft-0d54a1f4.pt",),
            downloads=(
                Download(
                    "https://github.com/bshall/hubert/releases/download/v0.1/hubert-soft-0d54a1f4.pt"
                ),
            ),
        ),
        "medium.pt": PretrainedFile(
            name="medium.pt",
            relative_path="pretrain/medium.pt",
            description="Whisper medium (openai/whisper checkpoint; whisper-ppg)",
            approx_megabytes=1530,
            urls=(
                "https://openaipublic.azureedge.net/main/whisper/models/"
                "345ae4da62f9b3d59415adc60127b97c714f32e89e936602e85993674d08dcb1/medium.pt",
            ),
            downloads=(
                # openai/whisper names each file by its sha256 and checks it on download
                Download(
                    "https://openaipublic.azureedge.net/main/whisper/models/"
                    "345ae4da62f9b3d59415adc60127b97c714f32e89e936602e85993674d08dcb1/medium.pt",
                    sha256="345ae4da62f9b3d59415adc60127b97c714f32e89e936602e85993674d08dcb1",
                ),
            ),
        ),
        "large-v2.pt": PretrainedFile(
            name="large-v2.pt",
            relative_path="pretrain/large-v2.pt",
            description="Whisper large-v2 (openai/whisper checkpoint; whisper-ppg-large)",
            approx_megabytes=3090,
            urls=(
                "https://openaipublic.azureedge.net/main/whisper/models/"
                "81f7c96c852ee8fc832187b0132e569d6c3065a3252ed18e56effd0b6a73e524/large-v2.pt",
            ),
            downloads=(
                Download(
                    "https://openaipublic.azureedge.net/main/whisper/models/"
                    "81f7c96c852ee8fc832187b0132e569d6c3065a3252ed18e56effd0b6a73e524/large-v2.pt",
                    sha256="81f7c96c852ee8fc832187b0132e569d6c3065a3252ed18e56effd0b6a73e524",
                ),
            ),
        ),
        "chinese-hubert-large-fairseq-ckpt.pt": PretrainedFile(
            name="chinese-hubert-large-fairseq-ckpt.pt",
            relative_path="pretrain/chinese-hubert-large-fairseq-ckpt.pt",
            description="Chinese HuBERT large (TencentGameMate, fairseq checkpoint; cnhubertlarge)",
            urls=(
                "https://huggingface.co/TencentGameMate/chinese-hubert-large/resolve/main/"
                "chinese-hubert-large-fairseq-ckpt.pt",
            ),
            downloads=(
                Download(
                    "https://huggingface.co/TencentGameMate/chinese-hubert-large/resolve/main/"
                    "chinese-hubert-large-fairseq-ckpt.pt"
                ),
            ),
        ),
        "DPHuBERT-sp0.75.pth": PretrainedFile(
            name="DPHuBERT-sp0.75.pth",
            relative_path="pretrain/DPHuBERT-sp0.75.pth",
            description="DPHuBERT, HuBERT base pruned to 25% (pyf98/DPHuBERT; dphubert)",
            urls=("https://huggingface.co/pyf98/DPHuBERT/resolve/main/DPHuBERT-sp0.75.pth",),
            downloads=(
                Download("https://huggingface.co/pyf98/DPHuBERT/resolve/main/DPHuBERT-sp0.75.pth"),
            ),
        ),
        "WavLM-Base+.pt": PretrainedFile(
            name="WavLM-Base+.pt",
            relative_path="pretrain/WavLM-Base+.pt",
            description="WavLM Base+ (microsoft/unilm; wavlmbase+)",
            urls=("https://github.com/microsoft/unilm/tree/master/wavlm",),
            downloads=(
                # the signed link so-vits-svc 4.1's README gives (valid until 2033-03-02)
                Download(
                    "https://valle.blob.core.windows.net/share/wavlm/WavLM-Base+.pt"
                    "?sv=2020-08-04&st=2023-03-01T07%3A51%3A05Z&se=2033-03-02T07%3A51%3A00Z"
                    "&sr=c&sp=rl&sig=QJXmSJG9DbMKf48UDIU1MfzIro8HQOf3sqlNXiflY1I%3D"
                ),
            ),
        ),
        "vec-256-layer-9.onnx": PretrainedFile(
            name="vec-256-layer-9.onnx",
            relative_path="pretrain/vec-256-layer-9.onnx",
            description="ContentVec layer 9 + projection, vec256l9-onnx (MoeSS ONNX export)",
            urls=("https://huggingface.co/NaruseMioShirakana/MoeSS-SUBModel/tree/main",),
        ),
        "vec-256-layer-12.onnx": PretrainedFile(
            name="vec-256-layer-12.onnx",
            relative_path="pretrain/vec-256-layer-12.onnx",
            description="ContentVec layer 12 + projection, vec256l12-onnx (MoeSS ONNX export)",
            urls=("https://huggingface.co/NaruseMioShirakana/MoeSS-SUBModel/tree/main",),
        ),
        "vec-768-layer-9.onnx": PretrainedFile(
            name="vec-768-layer-9.onnx",
            relative_path="pretrain/vec-768-layer-9.onnx",
            description="ContentVec layer 9, vec768l9-onnx (MoeSS ONNX export)",
            urls=("https://huggingface.co/NaruseMioShirakana/MoeSS-SUBModel/tree/main",),
        ),
        "vec-768-layer-12.onnx": PretrainedFile(
            name="vec-768-layer-12.onnx",
            relative_path="pretrain/vec-768-layer-12.onnx",
            description="ContentVec layer 12, vec768l12-onnx (MoeSS ONNX export)",
            urls=("https://huggingface.co/NaruseMioShirakana/MoeSS-SUBModel/tree/main",),
        ),
        "hubert-soft.onnx": PretrainedFile(
            name="hubert-soft.onnx",
            relative_path="pretrain/hubert-soft.onnx",
            description="HuBERT-soft, hubertsoft-onnx (MoeSS ONNX export)",
            urls=("https://huggingface.co/NaruseMioShirakana/MoeSS-SUBModel/tree/main",),
        ),
    }
)


def file_uses() -> dict[str, tuple[str, ...]]:
    """What needs each known file: file name -> ("speech encoder vec768l12 (...)",
    "f0 method rmvpe (...)", ...). Speech encoders come from the encoder registry (its
    `weights` keys), everything else from `PretrainedFile.used_for`."""
    from sovits.features.content.registry import ENCODERS

    encoders: dict[str, list[str]] = {name: [] for name in KNOWN_FILES}
    for encoder, spec in ENCODERS.items():
        if spec.weights in encoders:
            encoders[spec.weights].append(encoder)
    uses: dict[str, tuple[str, ...]] = {}
    for name, entry in KNOWN_FILES.items():
        found = encoders[name]
        encoder_use = (
            (f"speech encoder {', '.join(found)} (config model.speech_encoder)",)
            if found else ()
        )
        uses[name] = encoder_use + entry.used_for
    return uses


@dataclass(frozen=True)
class BaseModel:
    """A base model users fine-tune from; it lives in the model folder, not the cache.

    relative_path: below the model folder (`logs/44k`), POSIX separators.
    description: what it is and what it must match.
    """

    relative_path: str
    description: str


BASE_MODELS: tuple[BaseModel, ...] = (
    BaseModel(
        "G_0.pth",
        "generator base model: `sovits train` warm-starts from it (step 0); it must match "
        "the config (speech encoder / ssl_dim, sizes, speaker count or --partial-warm-start)",
    ),
    BaseModel(
        "D_0.pth",
        "discriminator base model, needed beside G_0.pth",
    ),
    BaseModel(
        "diffusion/model_0.pt",
        "shallow-diffusion base model (Diffusion-SVC / DDSP-SVC compatible): `sovits "
        "train-diff` warm-starts from it",
    ),
)
"""so-vits-svc publishes no official base models ("from svc-develop-team (TBD) or
anywhere else"); community ones must be trained with the same speech encoder."""


def user_cache_dir() -> Path:
    """The per-user cache folder searched last (`platformdirs.user_cache_dir("sovits")`)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("sovits"))


def search_locations(name: str) -> list[Path]:
    """Every path `resolve_weights(name)` checks without an explicit path, in order."""
    entry = known_file(name)
    relative = Path(*entry.relative_path.split("/"))
    locations = []
    home = os.environ.get(HOME_VARIABLE)
    if home:
        locations.append(Path(home).expanduser() / relative)
    locations.append(user_cache_dir() / relative)
    if entry.package is not None and entry.package_path is not None:
        folder = package_folder(entry.package)
        if folder is not None:
            locations.append(folder / Path(*entry.package_path.split("/")))
    return locations


def package_folder(package: str) -> Path | None:
    """Folder of an installed top-level package, found without importing it; None if absent."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def known_file(name: str) -> PretrainedFile:
    """The registry entry for `name`; ValueError for names sovits does not know."""
    try:
        return KNOWN_FILES[name]
    except KeyError:
        known = ", ".join(sorted(KNOWN_FILES))
        raise ValueError(f"unknown pretrained file {name!r}; known files: {known}") from None


def resolve_weights(name: str, explicit: str | Path | None = None) -> Path:
    """Path of the pretrained file `name` (a key of KNOWN_FILES).

    An explicit path wins and must exist. Otherwise `$SOVITS_HOME/<relative path>`, then
    the user cache. Raises MissingFileError naming every place searched, the download
    URLs and the steps to prepare the file.
    """
    entry = known_file(name)
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_file():
            return path
        raise MissingFileError(
            f"{entry.description} not found",
            where=path,
            hint=_download_hint(entry),
        )
    locations = search_locations(name)
    for path in locations:
        if path.is_file():
            return path
    places = " or ".join(str(path) for path in locations if not _inside_package(entry, path))
    if HOME_VARIABLE not in os.environ:
        places += f" (or set {HOME_VARIABLE} to a folder holding {entry.relative_path})"
    raise MissingFileError(
        f"{entry.description} ({entry.name}) not found; put it at {places}",
        hint=_download_hint(entry),
    )


def _inside_package(entry: PretrainedFile, path: Path) -> bool:
    return entry.package_path is not None and path.as_posix().endswith(
        f"{entry.package}/{entry.package_path}"
    )


def _download_hint(entry: PretrainedFile) -> str:
    text = "download it from " + " or ".join(entry.urls)
    if entry.instructions:
        text += f"; {entry.instructions}"
    if entry.downloads:
        text += f"; or run `sovits pretrained fetch {entry.name}`"
    return text
