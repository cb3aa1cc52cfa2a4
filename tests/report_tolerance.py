"""Run the parity tests under each CPU kernel setting and report the float differences.

    python tests/report_tolerance.py              # every setting; exit 1 if any run fails
    python tests/report_tolerance.py native default
    python tests/report_tolerance.py --perturb 1e-3 native   # sharpness: all must FAIL

Torch (ATEN_CPU_CAPABILITY), oneDNN (ONEDNN_MAX_CPU_ISA), faiss and onnxruntime pick
kernels by CPU, so a reference computed on AVX2 differs by float32 rounding elsewhere.
Forcing the kernels on one machine shows that the tolerances of tests/tolerance.py hold
on every CPU. Each run logs every `assert_close` (SOVITS_TOLERANCE_LOG); the table gives,
per fixture family, the largest absolute and relative difference, the largest share of
its tolerance used, and how many comparisons would not notice a 1e-3 relative change of
the reference (must be 0 but for the declared float16 exception). `make test-portable`
runs this script.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETTINGS: dict[str, dict[str, str]] = {
    "native": {},
    "default": {"ATEN_CPU_CAPABILITY": "default"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "onednn-avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "avx2+onednn-avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}
_KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")

# test path -> fixture family (the first matching prefix wins)
FAMILIES: tuple[tuple[str, str], ...] = (
    ("tests/models/test_synthesizer_parts.py", "sovits41 synthesizer"),
    ("tests/test_load_synthesizer.py", "sovits41 synthesizer"),
    ("tests/tools/test_compress.py", "sovits41 synthesizer"),
    ("tests/models/test_vocoder.py", "sovits41 NSF-HiFiGAN decoder"),
    ("tests/dsp/", "sovits41 helpers (f0, mel, volume)"),
    ("tests/tools/test_onnx_export.py", "sovits41 ONNX"),
    ("tests/models/test_nsf_vocoder.py", "extras vocoder / enhancer"),
    ("tests/checkpoints/", "extras vocoder / enhancer"),
    ("tests/inference/test_enhancer.py", "extras vocoder / enhancer"),
    ("tests/models/diffusion/", "extras diffusion"),
    ("tests/inference/test_convert_diffusion.py", "extras diffusion"),
    ("tests/features/test_rmvpe.py", "extras RMVPE"),
    ("tests/features/test_fcpe.py", "extras FCPE"),
    ("tests/retrieval/test_index.py", "extras faiss index"),
    ("tests/retrieval/test_kmeans.py", "extras k-means"),
    ("tests/tools/test_merge.py", "extras model merge"),
)
PARITY_PATHS: tuple[str, ...] = (
    "tests/models",
    "tests/test_load_synthesizer.py",
    "tests/tools/test_compress.py",
    "tests/tools/test_onnx_export.py",
    "tests/tools/test_merge.py",
    "tests/dsp",
    "tests/checkpoints",
    "tests/features/test_rmvpe.py",
    "tests/features/test_fcpe.py",
    "tests/retrieval/test_index.py",
    "tests/retrieval/test_kmeans.py",
    "tests/inference/test_enhancer.py",
    "tests/inference/test_convert_diffusion.py",
)


def family(test: str) -> str:
    for prefix, name in FAMILIES:
        if test.startswith(prefix):
            return name
    return test.split("::", 1)[0]


def run(setting: str, paths: list[str], perturb: str | None) -> tuple[int, list[dict], set[str]]:
    """Run pytest on `paths` under one setting: exit code, log records, failed test ids."""
    env = {key: value for key, value in os.environ.items() if key not in _KERNEL_VARIABLES}
    env.update(SETTINGS[setting])
    env.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "tolerance.jsonl"
        env["SOVITS_TOLERANCE_LOG"] = str(log)
        if perturb:
            env["SOVITS_TOLERANCE_PERTURB"] = perturb
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths]
        print(f"== {setting}: {' '.join(f'{k}={v}' for k, v in SETTINGS[setting].items())}")
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        lines = result.stdout.splitlines()
        failed = [line for line in lines if line.startswith("FAILED")]
        for line in (failed if not perturb else []) + [line for line in lines if line][-1:]:
            print("   ", line)
        records = []
        if log.exists():
            records = [json.loads(line) for line in log.read_text().splitlines()]
    return result.returncode, records, {line.split()[1] for line in failed}


def table(records: list[dict]) -> list[str]:
    """Per family and tolerance: comparisons, max abs / rel difference, max share of the
    tolerance used, comparisons a 1e-3 change of the reference would not fail."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        groups[f"{family(record['test'])}: {record['tolerance']}"].append(record)
    lines = [
        f"    {'family: tolerance':<52} {'n':>4} {'max abs':>9} {'max rel':>9} {'used':>6}"
        f" {'dull':>4}  worst"
    ]
    for name in sorted(groups):
        rows = groups[name]
        worst = max(rows, key=lambda row: row["used"])
        dull = sum(row["sharp"] is False for row in rows)
        lines.append(
            f"    {name:<52} {len(rows):>4} {max(r['max_abs'] for r in rows):>9.2g} "
            f"{max(r['max_rel'] for r in rows):>9.2g} {worst['used']:>6.2f} {dull:>4}"
            f"  {worst['what']}"
        )
    for record in records:
        if record["sharp"] is False:
            test, what, name = record["test"], record["what"], record["tolerance"]
            lines.append(f"    not sharp: {test} {what} ({name}, peak {record['peak']:.3g})")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("settings", nargs="*", help=f"of {', '.join(SETTINGS)} (default: all)")
    parser.add_argument("--paths", nargs="+", default=list(PARITY_PATHS))
    parser.add_argument("--perturb", help="multiply every reference by 1 + this (must fail)")
    args = parser.parse_args()
    unknown = sorted(set(args.settings) - set(SETTINGS))
    if unknown:
        parser.error(f"unknown setting {', '.join(unknown)}; choose from {', '.join(SETTINGS)}")
    status = 0
    for setting in args.settings or list(SETTINGS):
        code, records, failed = run(setting, args.paths, args.perturb)
        if args.perturb:
            # every test with a comparison that a 1e-3 change should fail must have failed;
            # tests whose only comparisons cannot see it (HALF_AUDIO) are listed apart
            sharp = {r["test"] for r in records if r["sharp"]}
            dull = {r["test"] for r in records if r["sharp"] is False} - sharp
            survivors = sorted(sharp - failed)
            print(f"    {len(sharp)} tests compare with references; {len(failed)} failed")
            for test in survivors:
                print(f"    still passing: {test}")
            for test in sorted(dull):
                print(f"    not sharp by design (float16): {test}")
            status |= 1 if survivors else 0
        else:
            print("\n".join(table(records)))
            status |= code
    return 1 if status else 0


if __name__ == "__main__":
    sys.exit(main())
