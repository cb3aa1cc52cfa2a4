"""Child process of preprocessing and training jobs: `python -m sovits.api._child SPEC`.

SPEC is JSON {"kind", "params", "models_root", "work_dir"}. Progress, results and a
typed error are printed as `CHILD_PROGRESS_PREFIX` + JSON lines on stdout; everything
else the child prints or logs goes to the job's log. SIGTERM asks training to stop
after the current step (it saves a checkpoint); the parent kills the child if it
does not end soon after.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from sovits.api.jobs import JobError
from sovits.api.runners import CHILD_PROGRESS_PREFIX
from sovits.errors import SovitsError


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(CHILD_PROGRESS_PREFIX + json.dumps(message) + "\n")
    sys.stdout.flush()


def _preprocess(params: dict[str, Any], models_root: Path) -> list[str]:
    from sovits.config import load_svc_config
    from sovits.data.preprocess import PreprocessSettings, preprocess_dataset

    config = load_svc_config(models_root / params["model"] / "config.json")
    settings = PreprocessSettings(f0_method=params["f0_method"], use_diff=params["use_diff"],
                                  num_processes=params["num_processes"])

    def progress(done: int, total: int) -> None:
        _say({"progress": done / max(total, 1), "stage": f"preprocessing {done}/{total}"})

    report = preprocess_dataset(params["dataset"], config, settings, progress=progress)
    print(report.summary())
    if not report.ok:
        raise SovitsError("preprocessing failed for some clips: " + "; ".join(
            map(str, report.failed[:3])))
    return [params["dataset"]]


def _train(params: dict[str, Any], models_root: Path) -> list[str]:
    from sovits.config import load_svc_config
    from sovits.training.trainer import TrainOptions, TrainProgress, train

    model_dir = models_root / params["model"]
    config = load_svc_config(model_dir / "config.json")
    max_steps = params.get("max_steps")
    options = TrainOptions(accelerator=params.get("accelerator", "auto"), max_steps=max_steps)

    def progress(update: TrainProgress) -> None:
        fraction = update.steps_done / max_steps if max_steps else 0.0
        names = {"loss/d/total": "d", "loss/g/total": "g", "loss/g/mel": "mel"}
        losses = " ".join(f"{short} {update.losses[key]:.3f}" for key, short in names.items()
                          if key in update.losses)
        _say({"progress": fraction, "stage": f"step {update.step} epoch {update.epoch} {losses}",
              "losses": dict(update.losses), "step": update.step})

    def hook(trainer: Any) -> None:
        signal.signal(signal.SIGTERM, lambda signum, frame: trainer.request_stop())

    result = train(config, model_dir, options, num_workers=params.get("num_workers", 0),
                   progress=progress, trainer_hook=hook)
    print(f"steps {result.first_step}..{result.last_step} (stopped: {result.stopped_by})")
    return sorted(str(path) for path in model_dir.glob("G_*.pth"))


def main(argv: list[str]) -> int:
    """Run the job SPEC names; 0 when done, 1 when it failed (the error was reported)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(levelname)s %(name)s: %(message)s")
    spec = json.loads(argv[0])
    runners = {"preprocess": _preprocess, "train": _train}
    try:
        results = runners[spec["kind"]](spec["params"], Path(spec["models_root"]))
    except SovitsError as error:
        _say({"error": JobError.from_exception(error).to_dict()})
        return 1
    _say({"results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
