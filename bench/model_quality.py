"""Model quality of the whole training procedure, over seeds and trial counts, against two untuned peers.

    python bench/model_quality.py [--seeds 1 2 3 4 5] [--trials 10 20 50] [--jobs 2]
    python bench/model_quality.py --params '{"kernel": "linear", "C": 0.01}' [--states 2026 7 99]
    python bench/model_quality.py --noise

The procedure is what ``heartrisk train`` runs with the configured folds and repeats: a seeded 80/20 split,
the search on the training part (scikit-learn's defaults first, mean ROC-AUC over repeated stratified
k-fold), the best mean, sigmoid calibration. For each seed it runs once with the largest trial count; a
search of n trials is the first n trials of a longer one with the same seed (tests/unit/test_model.py),
so the smaller counts are read from it. Measured, for each seed and trial count:

- **champion**: the calibrated pipeline of the chosen parameters, scored by repeated stratified 5-fold x 10
  CV on the 302 unique rows under random state 2026, which no search uses; the untuned peers on the same
  folds: StandardScaler + SVC() and StandardScaler + LogisticRegression().
- **nested CV**: the whole procedure run inside each training part of an outer stratified 5-fold CV x 2
  (random state 2026 + seed) and scored on its test part, the peers on the same outer folds: what the
  procedure gives on patients it has not seen. One seed's 10 outer folds are noisy (sd about 0.003 for a
  difference between two models); the row "all seeds" pools the 50 outer folds, and is the estimate.
- the same for the one-standard-error rule (the defaults unless the best mean beats them by more than one
  standard error, sd / sqrt(folds)), read from the same searches: measured, not adopted.

With ``--params`` (e.g. the ``best_params`` of a ``heartrisk train`` JSON line) it scores those parameters
and the peers by repeated 5-fold x 10 CV under each of ``--states``: an independent check of one champion.
With ``--noise`` it measures how much the objective moves with the shuffle of the folds, by repeats.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import Pipeline

from _common import ROOT
from heartrisk import data, model
from heartrisk.config import get_settings

EVAL_STATE = 2026  # no search uses it: searches use the seeds 1 to 5 (and 42 by default)
TOLERANCE = 0.002  # the promise: every figure at least the untuned SVC minus this
PEERS = {  # the same pipelines training scores on its folds
    "untuned SVC": lambda: model.svc_pipeline(model.DEFAULTS, calibrated=False),
    "logistic regression": model.logistic_pipeline,
}
RULES = ("best mean", "one-SE rule")


def picks(trials: list[model.Trial], counts: list[int], folds: int) -> dict[tuple[str, int], dict]:
    """The parameters each rule takes after the first n trials."""
    chosen = {}
    for n in counts:
        best = model.choose(trials[:n])
        defaults = trials[0]
        beats = best.cv_mean - defaults.cv_mean > best.cv_std / math.sqrt(folds)
        chosen["best mean", n] = best.params
        chosen["one-SE rule", n] = best.params if beats else defaults.params
    return chosen


def procedure(x, y, seed: int, counts: list[int], settings) -> dict[tuple[str, int], dict]:
    """The search as training runs it, once with the largest count."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # libsvm's early-stop warnings of hopeless candidates
        result = model.search(x, y, trials=max(counts), folds=settings.folds, repeats=settings.repeats, seed=seed)
    return picks(result.trials, counts, settings.folds)


def champion(params: dict, folds: int) -> Pipeline:
    return model.svc_pipeline(params, calibrated=True, folds=folds)


def repeated_cv(pipeline: Pipeline, x, y, state: int) -> float:
    cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=10, random_state=state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.mean(model.cv_roc_auc(pipeline, x, y, cv)))


def main_run(frame, seed: int, counts: list[int], settings) -> dict:
    """One seed: the procedure on its training split, its champions scored on the evaluation folds."""
    x_train, _, y_train, _ = data.split(frame, test_size=settings.test_size, seed=seed)
    chosen = procedure(x_train, y_train, seed, counts, settings)
    x, y = data.features_and_target(frame)
    scores = {key: repeated_cv(champion(params, settings.folds), x, y, EVAL_STATE) for key, params in chosen.items()}
    return {"seed": seed, "params": chosen, "scores": scores}


def outer_fold(frame, seed: int, train: np.ndarray, test: np.ndarray, counts: list[int], settings) -> dict:
    """One outer fold of the nested CV: the procedure on the outer training part, scored on its test part."""
    x, y = data.features_and_target(frame)
    x_in, y_in, x_out, y_out = x.iloc[train], y.iloc[train], x.iloc[test], y.iloc[test]
    chosen = procedure(x_in.reset_index(drop=True), y_in.reset_index(drop=True), seed, counts, settings)
    scores = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, params in chosen.items():
            pipeline = champion(params, settings.folds).fit(x_in, y_in)
            scores[key] = roc_auc_score(y_out, pipeline.predict_proba(x_out)[:, 1])
        for name, peer in PEERS.items():
            scores[name] = roc_auc_score(y_out, peer().fit(x_in, y_in).decision_function(x_out))
    return {"seed": seed, "scores": scores}


def measure(args: argparse.Namespace, settings) -> tuple[dict, list[dict], list[dict]]:
    frame = data.deduplicate(data.load_csv(ROOT / "data" / "heart.csv"))
    x, y = data.features_and_target(frame)
    peers = {name: repeated_cv(peer(), x, y, EVAL_STATE) for name, peer in PEERS.items()}
    jobs = [delayed(main_run)(frame, seed, args.trials, settings) for seed in args.seeds]
    for seed in args.seeds:
        outer = RepeatedStratifiedKFold(n_splits=5, n_repeats=2, random_state=EVAL_STATE + seed)
        jobs += [delayed(outer_fold)(frame, seed, tr, te, args.trials, settings) for tr, te in outer.split(x, y)]
    done = Parallel(n_jobs=args.jobs)(jobs)
    return peers, [d for d in done if "params" in d], [d for d in done if "params" not in d]


def short(params: dict) -> str:
    ordered = sorted(params.items(), key=lambda item: item[0] != "kernel")
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in ordered)


def row(label: str, params: str, score: float, peers: dict, nested: dict, key) -> str:
    tuned, base, lr = nested[key], nested["untuned SVC"], nested["logistic regression"]
    return (
        f"| {label} | {params} | {score:.4f} | {score - peers['untuned SVC']:+.4f} "
        f"| {score - peers['logistic regression']:+.4f} | {tuned:.4f} | {tuned - base:+.4f} | {tuned - lr:+.4f} |"
    )


def report(args: argparse.Namespace, peers: dict, mains: list[dict], nested: list[dict]) -> bool:
    """Prints one table per rule; True when, for the adopted rule, every champion's figure and the nested-CV
    estimate over all seeds are at least the untuned SVC minus 0.002."""
    untuned = peers["untuned SVC"]
    print(f"\nrepeated 5-fold x 10 CV (random state {EVAL_STATE}), 302 unique rows: untuned SVC {untuned:.4f}, "
          f"logistic regression {peers['logistic regression']:.4f}")  # fmt: skip
    ok = True
    for rule in RULES:
        print(f"\n{rule}{' (adopted)' if rule == RULES[0] else ' (not adopted)'}")
        print("| seed, trials | champion | CV ROC-AUC | - untuned SVC | - logistic "
              "| nested CV | - untuned SVC | - logistic |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        for run in mains:
            folds = [f["scores"] for f in nested if f["seed"] == run["seed"]]
            for n in args.trials:
                score = run["scores"][rule, n]
                ok = ok and (score >= untuned - TOLERANCE or rule != RULES[0])
                mean = {k: float(np.mean([f[k] for f in folds])) for k in ((rule, n), *PEERS)}
                print(row(f"{run['seed']}, {n}", short(run["params"][rule, n]), score, peers, mean, (rule, n)))
        for n in args.trials:
            score = float(np.mean([run["scores"][rule, n] for run in mains]))
            pooled = {k: float(np.mean([f["scores"][k] for f in nested])) for k in ((rule, n), *PEERS)}
            ok = ok and (pooled[rule, n] >= pooled["untuned SVC"] - TOLERANCE or rule != RULES[0])
            print(row(f"**all seeds, {n}**", "(mean)", score, peers, pooled, (rule, n)))
    return ok


def check(params: dict, states: list[int], folds: int) -> None:
    """One set of parameters (a trained champion's) and the peers, by repeated CV under several random states."""
    frame = data.deduplicate(data.load_csv(ROOT / "data" / "heart.csv"))
    x, y = data.features_and_target(frame)
    print(f"champion {short(params)}, calibrated; repeated stratified 5-fold x 10 CV on {len(frame)} unique rows")
    for state in states:
        ours = repeated_cv(champion(params, folds), x, y, state)
        peer = {name: repeated_cv(make(), x, y, state) for name, make in PEERS.items()}
        print(f"  random state {state:>6}: champion {ours:.4f}   untuned SVC {peer['untuned SVC']:.4f} "
              f"({ours - peer['untuned SVC']:+.4f})   logistic regression {peer['logistic regression']:.4f} "
              f"({ours - peer['logistic regression']:+.4f})")  # fmt: skip


def noise(settings, shuffles: int = 60) -> None:
    """How much one candidate's objective moves with the shuffle of its folds, by number of repeats, and what
    the repeats cost: the measurements behind the default of HEARTRISK_CV_REPEATS."""
    frame = data.deduplicate(data.load_csv(ROOT / "data" / "heart.csv"))
    x, _, y, _ = data.split(frame, test_size=settings.test_size, seed=settings.seed)
    means = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, peer in PEERS.items():
            folds = [model.cv_splits(folds=settings.folds, repeats=1, seed=1000 + s) for s in range(shuffles)]
            means[name] = np.array([np.mean(model.cv_roc_auc(peer(), x, y, cv)) for cv in folds])
    difference = means["logistic regression"] - means["untuned SVC"]
    print(f"{settings.folds}-fold CV on the training split of seed {settings.seed}, {shuffles} shuffles")
    print("| repeats | sd of the objective, untuned SVC | sd, logistic regression | sd of their difference "
          "| search of 50 trials, s |\n|---|---|---|---|---|")  # fmt: skip
    for repeats in (1, 2, 3, 5, 10):
        blocks = shuffles // repeats
        sd = {k: v[: blocks * repeats].reshape(blocks, repeats).mean(axis=1).std() for k, v in means.items()}
        sd_diff = difference[: blocks * repeats].reshape(blocks, repeats).mean(axis=1).std()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.search(x, y, trials=50, folds=settings.folds, repeats=repeats, seed=settings.seed)
        print(f"| {repeats} | {sd['untuned SVC']:.4f} | {sd['logistic regression']:.4f} | {sd_diff:.4f} "
              f"| {time.perf_counter() - start:.1f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--trials", type=int, nargs="+", default=[10, 20, 50])
    parser.add_argument("--jobs", type=int, default=2, help="processes (joblib); the machine may be shared")
    parser.add_argument("--params", type=json.loads, help="score these parameters instead (JSON object)")
    parser.add_argument("--states", type=int, nargs="+", default=[EVAL_STATE, 7, 99, 12345])
    parser.add_argument("--noise", action="store_true", help="the objective's spread and cost by repeats instead")
    args = parser.parse_args()
    settings = get_settings().search
    if args.noise:
        noise(settings)
        return
    if args.params:
        check(args.params, args.states, settings.folds)
        return
    start = time.perf_counter()
    print(f"procedure: {settings.folds}-fold CV x {settings.repeats} repeats, seeds {args.seeds}, trials {args.trials}")
    peers, mains, nested = measure(args, settings)
    ok = report(args, peers, mains, nested)
    print(f"\nadopted rule, every champion and the nested CV over all seeds at least the untuned SVC - {TOLERANCE}: "
          f"{'yes' if ok else 'NO'}"
          f" ({time.perf_counter() - start:.0f} s, {args.jobs} processes)")  # fmt: skip


if __name__ == "__main__":
    main()
