"""The ``heartrisk`` command: one entry point for training, serving, monitoring and set-up.

Human-readable progress goes to stderr (Prefect's logs); the last line on stdout is one JSON object
that scripts can rely on. A user's mistake (bad data, bad option) exits 2 with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from heartrisk.config import get_settings
from heartrisk.data import DataError


def _emit(summary: dict[str, Any], lines: Sequence[str]) -> None:
    for line in lines:
        print(line)
    print(json.dumps(summary, default=str), flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    from heartrisk.data import load_csv
    from heartrisk.train import train_flow

    load_csv(args.data or get_settings().data_path)  # fail fast, before Prefect starts, on bad data
    summary = train_flow(
        trials=args.trials, folds=args.folds, seed=args.seed, data=args.data, experiment=args.experiment
    )
    verdict = "promoted to champion" if summary["promoted"] else "NOT promoted"
    _emit(
        summary,
        [
            "",
            f"Training finished in {summary['seconds']} s ({summary['trials']} trials, {summary['folds']}-fold CV)",
            f"  best params    {summary['best_params']}",
            f"  CV ROC-AUC     {summary['cv_roc_auc']:.4f} ± {summary['cv_roc_auc_std']:.4f}",
            f"  test ROC-AUC   {summary['test_roc_auc']:.4f}   accuracy {summary['test_accuracy']:.4f}"
            f"   F1 {summary['test_f1']:.4f}   Brier {summary['test_brier']:.4f}",
            f"  model          {summary['model_name']} v{summary['model_version']}: {verdict}"
            f" ({summary['promotion_reason']})",
            f"  MLflow run     {summary['run_url']}",
        ],
    )
    return 0


def cmd_mlflow_server(args: argparse.Namespace) -> int:
    """Exec ``mlflow server`` sized for this project: one worker, no job runner, SQLite, local artifacts."""
    settings = get_settings()
    state = Path(args.state_dir or settings.state_dir / "mlflow").resolve()
    (state / "artifacts").mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--host", args.host or settings.mlflow_host,
        "--port", str(args.port or settings.mlflow_port),
        "--workers", str(settings.mlflow_workers),
        "--backend-store-uri", f"sqlite:///{state / 'mlflow.db'}",
        "--artifacts-destination", str(state / "artifacts"),
        "--serve-artifacts",
    ]  # fmt: skip
    if settings.mlflow_allowed_hosts:
        command += ["--allowed-hosts", settings.mlflow_allowed_hosts]
    # The job runner and its consumers (about 600 MB) serve features this project does not use.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    os.execv(command[0], command)  # noqa: S606 - replaces this process, as a supervisor expects
    return 0  # pragma: no cover


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heartrisk", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="tune, track, register and (if at least as good) promote a model")
    train.add_argument("--trials", type=int, help="hyperopt evaluations (default 50, HEARTRISK_TRIALS)")
    train.add_argument("--folds", type=int, help="stratified CV folds (default 5)")
    train.add_argument("--seed", type=int, help="seed of split, CV and search (default 42)")
    train.add_argument("--data", help="training CSV (default data/heart.csv)")
    train.add_argument("--experiment", help="MLflow experiment (default heart-attack-hyperopt)")
    train.set_defaults(func=cmd_train)

    mlf = sub.add_parser("mlflow-server", help="run the MLflow tracking server sized for this project")
    mlf.add_argument("--host", help="bind address (default 127.0.0.1, HEARTRISK_MLFLOW_HOST)")
    mlf.add_argument("--port", type=int, help="port (default 5000, HEARTRISK_MLFLOW_PORT)")
    mlf.add_argument("--state-dir", help="folder for mlflow.db and artifacts (default .state/mlflow)")
    mlf.set_defaults(func=cmd_mlflow_server)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("trials", "folds"):
        value = getattr(args, name, None)
        if value is not None and value < (2 if name == "folds" else 1):
            parser.error(f"--{name} must be at least {2 if name == 'folds' else 1}")
    try:
        return args.func(args)
    except DataError as exc:
        print(f"heartrisk {args.command}: invalid data:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
