"""What Prefect + MLflow add to the search: the training flow next to the same search done bare.

    python bench/train_overhead.py [--trials 50]

Prints, from one run: the bare hyperopt search (no Prefect, no MLflow; the same objective as the flow:
the configured folds and repeats, HEARTRISK_FOLDS and HEARTRISK_CV_REPEATS), the full flow (temporary Prefect
server, a real MLflow server, one child run per trial, final model logged and registered), the flow's
fixed cost per run (a warm flow with 1 trial minus the bare 1-trial search; the first flow of a
process also starts a temporary Prefect server, reported apart), and the ratio. The peer is the
original project's design, which logged a whole model per trial: measured here for a few trials.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from _common import ROOT, private_mlflow
from heartrisk import data, model
from heartrisk.config import get_settings

SETTINGS = get_settings().search
CV = {"folds": SETTINGS.folds, "repeats": SETTINGS.repeats, "seed": 42}


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def model_per_trial(x, y, trials: int) -> float:
    """The original design: each trial fits and logs a full MLflow model."""
    import mlflow

    mlflow.set_experiment("bench-model-per-trial")
    start = time.perf_counter()

    def on_trial(trial: model.Trial) -> None:
        with mlflow.start_run(nested=False):
            mlflow.log_params(trial.params)
            mlflow.log_metric("cv_roc_auc", trial.cv_mean)
            mlflow.sklearn.log_model(model.svc_pipeline(trial.params, calibrated=False).fit(x, y), name="model")

    model.search(x, y, trials=trials, **CV, on_trial=on_trial)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--peer-trials", type=int, default=5)
    args = parser.parse_args()
    frame = data.deduplicate(data.load_csv(ROOT / "data" / "heart.csv"))
    x, _, y, _ = data.split(frame, test_size=0.2, seed=42)

    print(f"{CV['folds']}-fold CV x {CV['repeats']} repeats, seed 42")
    bare, _ = timed(model.search, x, y, trials=args.trials, **CV)
    bare_one, _ = timed(model.search, x, y, trials=1, **CV)
    with private_mlflow() as url:
        os.environ["MLFLOW_TRACKING_URI"] = url
        from heartrisk.train import train_flow

        def flow(**params):
            return asyncio.run(train_flow(**params))

        cold, _ = timed(flow, trials=1, experiment="bench-start-up")  # starts a temporary Prefect server
        flow_one, _ = timed(flow, trials=1, experiment="bench-start-up")
        flow_full, summary = timed(flow, trials=args.trials, experiment="bench-overhead")
        peer = model_per_trial(x, y, args.peer_trials)

    fixed = flow_one - bare_one
    print(f"\nbare search, {args.trials} trials          {bare:8.2f} s")
    print(f"training flow, {args.trials} trials        {flow_full:8.2f} s   (model v{summary.promotion.new_version})")
    print(f"first flow in a process, 1 trial          {cold:8.2f} s   (includes the temporary Prefect server)")
    print(f"fixed cost per run (flow 1 trial - bare)  {fixed:8.2f} s   target < 10 s")
    print(f"flow / bare                               {flow_full / bare:8.2f} x")
    print(f"(flow - fixed) / bare                     {(flow_full - fixed) / bare:8.2f} x   target <= 2 x")
    per_trial_peer = peer / args.peer_trials
    per_trial_ours = (flow_full - fixed) / args.trials
    print(f"peer: model logged per trial, {args.peer_trials} trials {peer:8.2f} s = {per_trial_peer:.2f} s/trial")
    print(f"ours per trial                            {per_trial_ours:8.3f} s/trial = "
          f"{per_trial_peer / per_trial_ours:.0f}x less per trial than the peer")  # fmt: skip


if __name__ == "__main__":
    main()
