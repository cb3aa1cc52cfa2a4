"""One meaning per option name across every `sovits` command.

The test walks the whole command tree (nested groups included) and collects each
option's spellings. A spelling (`-m`, `--output`, `-f0p`) must lead to one canonical
option everywhere; each canonical name used by several commands must be one of the
meanings listed in MEANINGS and agree on taking a value or not, and on numbers vs text;
every F0-method option accepts exactly the pitch registry's names (plus "auto"/"none"
where documented); the flags the HTTP API and the web UI show (OptionSpec.flags) are
the CLI's own; the result-producing commands take --json; command functions stay
short; old spellings kept for so-vits-svc users (and earlier sovits README examples)
still parse.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import typing
from collections import defaultdict
from typing import Any

import pytest
import typer.main

from sovits.api.params import JOB_PARAMS
from sovits.cli import app
from sovits.cli._options import F0_METHOD_FLAGS, LegacyAliasCommand, model_folder
from sovits.config.options_schema import option_specs
from sovits.errors import InputError
from sovits.inference.options import F0_METHODS, ConvertOptions

MEANINGS = {
    "--model": "the model: its file (infer, live, serve) or folder (train, pretrained list)",
    "--config": "a config file the command reads (config.json; diffusion.yaml for train-diff)",
    "--output": "where the command writes its result: one file, or one folder",
    "--f0-method": "the F0 (pitch) extraction method, a name from the pitch registry",
    "--transpose": "a pitch shift in semitones",
    "--json": "print one JSON object on stdout instead of text",
    "--device": "the torch device",
    "--seed": "a random seed",
    "--sample-rate": "a sample rate in Hz",
    "--precision": "the numeric precision of the model's computation",
    "--accelerator": "the Lightning accelerator",
    "--devices": "the Lightning devices",
    "--num-nodes": "machines of a launched training",
    "--strategy": "the Lightning strategy",
    "--num-workers": "data loader processes",
    "--max-steps": "the last training step",
    "--partial-warm-start": "load the fitting parts of base models",
    "--overwrite": "replace results that already exist",
    "--force": "redo the work even when its result exists",
    "--verify": "check files by their hashes",
    "--in-dir": "the folder the command reads its dataset from",
    "--diffusion-config": "the diffusion model's diffusion.yaml",
    "--speaker": "a target speaker name of the model",
    "--crossfade": "a crossfade in seconds",
    "--dataset": "a dataset folder",
    "--speaker-mix": "per-frame speaker weights instead of one speaker",
    "--half": "float16 weights",
    "--max-conversions": "conversion jobs run at once",
    "--max-trainings": "training jobs run at once",
    "--max-queued": "jobs that may wait",
    "--max-upload-mb": "the largest upload",
    "--max-audio-seconds": "the longest uploaded audio",
    "--models-root": "the folder of model folders a server offers",
    "--work-dir": "the folder for uploads and job results",
    "--token": "the bearer token of the server",
    "--host": "the address to bind",
    "--port": "the port to bind",
    "--no-ui": "serve the API without the page",
    "--allowed-host": "a Host header the server accepts",
    "--num-processes": "worker processes",
}
"""Canonical names used by more than one command, with their one meaning. Conversion
options (ConvertOptions fields: --noise-scale, --dspitch-*, ...) need no entry: their
OptionSpec says what they mean, once for every command that offers them."""


def _schema_meanings() -> dict[str, str]:
    """Canonical flag -> help of each ConvertOptions field with CLI flags."""
    return {spec.flags[0]: spec.help for _, spec in option_specs(ConvertOptions) if spec.flags}

SHORT_NAMES = {"-m": "--model", "-o": "--output", "-c": "--config", "-t": "--transpose",
               "-f0p": "--f0-method", "-d": "--device", "-s": "--speaker"}
"""so-vits-svc's short flags and the one option each is everywhere."""

JSON_COMMANDS = (
    "check-config", "f0", "evaluate", "inspect", "merge", "compress", "export-onnx",
    "train-cluster", "train-index", "pretrained list", "pretrained fetch", "preprocess",
    "preprocess-config", "resample", "slice", "qc", "infer", "live", "train", "train-diff",
    "demo",
)
"""Commands that produce a result and print it as JSON with --json."""

EXTRA_F0_VALUES = frozenset({"auto", "none"})
"""Values an F0-method option may accept beyond the registry's: evaluate's "auto" (the
most accurate installed method) and qc's "none" (no f0 ranges)."""

MAX_COMMAND_LINES = 60


def _commands() -> dict[str, Any]:
    """Every leaf command by its path ("pretrained list")."""
    found: dict[str, Any] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subs = getattr(command, "commands", None)
        if subs is None:
            found[" ".join(path)] = command
            return
        for name, sub in subs.items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


COMMANDS = _commands()


def _options(command: Any) -> list[Any]:
    return [param for param in command.params if param.param_type_name == "option"]


def _canonical(option: Any) -> str:
    """The option's canonical name: its first long spelling."""
    return next(name for name in option.opts if name.startswith("--"))


def _spellings(option: Any) -> list[str]:
    return [*option.opts, *option.secondary_opts]


def _value_kind(option: Any) -> str:
    """"flag", "number" or "text" (paths and choices are text)."""
    if option.is_flag:
        return "flag"
    annotation = option.type_descriptor.annotation
    while typing.get_args(annotation):  # int | None, list[float]: the value's own type
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    return "number" if annotation in (int, float) else "text"


def _usage() -> dict[str, dict[str, set[str]]]:
    """spelling -> canonical name -> the commands that use it so."""
    usage: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path, command in COMMANDS.items():
        for option in _options(command):
            for spelling in _spellings(option):
                usage[spelling][_canonical(option)].add(path)
    return usage


def test_the_walk_finds_every_command_group() -> None:
    assert {"infer", "f0", "evaluate", "train", "pretrained list", "merge", "live",
            "serve"} <= set(COMMANDS)


def test_each_spelling_means_one_option_everywhere() -> None:
    clashes = {
        spelling: {canonical: sorted(paths) for canonical, paths in meanings.items()}
        for spelling, meanings in _usage().items()
        if len(meanings) > 1
    }
    assert not clashes, f"option names with several meanings: {clashes}"


def test_shared_names_have_one_documented_meaning_and_kind() -> None:
    occurrences: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for path, command in COMMANDS.items():
        for option in _options(command):
            occurrences[_canonical(option)].append((path, _value_kind(option)))
    for canonical, uses in occurrences.items():
        if len({path for path, _ in uses}) < 2:
            continue
        assert canonical in MEANINGS or canonical in _schema_meanings(), (
            f"{canonical} is used by {sorted(path for path, _ in uses)}: name its one "
            "meaning in MEANINGS (or give the options different names)"
        )
        kinds = {kind for _, kind in uses}
        assert len(kinds) == 1, f"{canonical} is a flag in some commands, a value in others: {uses}"


def test_the_short_flags_keep_their_so_vits_svc_meaning() -> None:
    usage = _usage()
    for short, canonical in SHORT_NAMES.items():
        assert set(usage[short]) == {canonical}, (short, dict(usage[short]))
    assert {"infer", "live", "serve", "train", "pretrained list"} <= usage["-m"]["--model"]
    assert {"f0", "merge", "compress", "export-onnx", "slice", "qc", "resample", "demo",
            "evaluate", "infer", "train-cluster", "train-index"} <= usage["-o"]["--output"]
    for path, command in COMMANDS.items():  # no command spells its output another way
        for option in _options(command):
            if set(_spellings(option)) & {"--out", "--out-dir", "--output-dir"}:
                assert _canonical(option) == "--output", (path, option.opts)


def _f0_options() -> list[tuple[str, Any]]:
    return [
        (path, option)
        for path, command in COMMANDS.items()
        for option in _options(command)
        if _canonical(option) == "--f0-method"
    ]


def test_every_f0_method_option_takes_the_registry_names() -> None:
    from sovits.features.pitch.registry import PITCH_METHODS

    assert F0_METHODS == PITCH_METHODS  # the cheap copy the CLI uses is the registry's
    found = _f0_options()
    assert {"f0", "evaluate", "qc", "preprocess", "infer", "live"} <= {path for path, _ in found}
    for path, option in found:
        assert set(F0_METHOD_FLAGS) <= set(option.opts), (path, option.opts)
        command = COMMANDS[path]
        context = command.make_context(path, ["--help"], resilient_parsing=True)
        accepted = set()
        for name in (*PITCH_METHODS, *sorted(EXTRA_F0_VALUES), "yin", "PM", "crepe-tiny", ""):
            try:
                assert option.process_value(context, name) == name
            except InputError:
                continue
            accepted.add(name)
        assert set(PITCH_METHODS) <= accepted <= set(PITCH_METHODS) | EXTRA_F0_VALUES, path
        with pytest.raises(InputError, match="unknown f0 method 'yin'; valid methods: pm, dio"):
            option.process_value(context, "yin")
    accepts = {path: option for path, option in found}
    assert accepts["evaluate"].process_value(None, "auto") == "auto"
    assert accepts["qc"].process_value(None, "none") == "none"
    # and no other option is an f0 method under another name
    for path, command in COMMANDS.items():
        for option in _options(command):
            if {"-f0p", "--f0_predictor", "--method", "--f0-predictor"} & set(option.opts):
                assert _canonical(option) == "--f0-method", (path, option.opts)


def test_api_and_web_ui_flags_are_the_cli_flags() -> None:
    """OptionSpec.flags (shown by the OpenAPI schema and the page) name CLI options with
    the same canonical name."""
    usage = _usage()
    for cls in (ConvertOptions, *JOB_PARAMS.values()):
        for item, spec in option_specs(cls):
            for flag in spec.flags:
                if flag in usage:
                    assert set(usage[flag]) == {spec.flags[0]}, (cls.__name__, item.name, flag)


@pytest.mark.parametrize("path", JSON_COMMANDS)
def test_result_commands_take_json(path: str) -> None:
    options = [option for option in _options(COMMANDS[path]) if "--json" in option.opts]
    assert len(options) == 1 and options[0].is_flag, path


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_command_functions_are_thin(path: str) -> None:
    """A command's body (after its signature and docstring) parses, calls, prints."""
    function = inspect.unwrap(COMMANDS[path].callback)
    node = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0]
    assert isinstance(node, ast.FunctionDef)
    body = node.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and len(body) > 1:
        body = body[1:]
    assert node.end_lineno is not None
    lines = node.end_lineno - body[0].lineno + 1
    assert lines <= MAX_COMMAND_LINES, f"`sovits {path}` has a {lines}-line body"


@pytest.mark.parametrize(
    ("path", "args", "name", "value"),
    [
        ("f0", ["a.wav", "-m", "harvest", "-o", "a.csv"], "method", "harvest"),
        ("f0", ["a.wav", "--method=dio", "-o", "a.csv"], "method", "dio"),
        ("f0", ["a.wav", "-f0p", "rmvpe", "-o", "a.csv"], "method", "rmvpe"),
        ("evaluate", ["a.wav", "b.wav", "-m", "dio", "--no-speaker"], "method", "dio"),
        ("evaluate", ["a.wav", "b.wav", "--no-speaker"], "speaker", False),
        ("preprocess", ["--f0-predictor", "dio"], "f0_method", "dio"),
        ("preprocess", ["--f0_predictor", "pm"], "f0_method", "pm"),
        ("pretrained list", ["--model-dir", "runs/a"], "model", "runs/a"),
        ("slice", ["a.wav", "--out", "clips"], "out_dir", "clips"),
        ("resample", ["--out_dir2", "out"], "out_dir", "out"),
        ("infer", ["-n", "a.wav", "--output-dir", "out"], "output_dir", "out"),
    ],
)
def test_old_spellings_still_parse(path: str, args: list[str], name: str, value: Any) -> None:
    got = COMMANDS[path].make_context(path, list(args)).params[name]
    if isinstance(value, bool):
        assert got is value
    else:
        assert str(got) == value


def test_hidden_aliases_point_at_options_and_stay_out_of_the_help() -> None:
    for path, command in COMMANDS.items():
        if not isinstance(command, LegacyAliasCommand):
            continue
        spellings = {name for option in _options(command) for name in _spellings(option)}
        for old, new in command.aliases.items():
            assert new in spellings and old not in spellings, (path, old, new)


@pytest.mark.parametrize("name", ["44k", "./runs/a", "runs/a", "/data/alto", "~/m"])
def test_model_folder_is_trains_rule(name: str) -> None:
    from sovits.training.checkpointing import model_dir_for

    assert model_folder(name) == model_dir_for(name)
