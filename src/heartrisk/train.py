"""Training: a Prefect flow that tunes the SVC pipeline with hyperopt and tracks it in MLflow.

One parent run per training, one child run per trial (params and CV scores only: no model per trial),
then the best pipeline is fitted, evaluated on the held-out split, logged with plots and a model card,
registered, and promoted to the champion alias only if it is at least as good as the current one.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import skops.io
from matplotlib.figure import Figure
from mlflow.entities import Metric, Param, RunTag
from mlflow.models import ModelSignature, infer_signature
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay
from sklearn.pipeline import Pipeline

from heartrisk import data as data_mod
from heartrisk import registry
from heartrisk.config import Settings, get_settings
from heartrisk.model import Trial, bootstrap_auc_interval, evaluate, search, svc_pipeline
from heartrisk.schema import TARGET


def trusted_sklearn_types(pipeline: Pipeline) -> list[str]:
    """The scikit-learn types skops does not trust by default (calibration internals), and only those."""
    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    foreign = [name for name in untrusted if not name.startswith("sklearn.")]
    if foreign:
        raise ValueError(f"pipeline holds non-scikit-learn types: {foreign}")
    return list(untrusted)


def _signature(pipeline: Pipeline, x_train: pd.DataFrame) -> ModelSignature:
    """Model signature; MLflow's hint about integer columns does not apply (inputs are validated first)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return infer_signature(x_train, pipeline.predict_proba(x_train.head(5)))


def _plots(pipeline: Pipeline, x_test: pd.DataFrame, y_test: pd.Series) -> dict[str, Figure]:
    roc = Figure(figsize=(5, 5))
    ax = roc.subplots()
    RocCurveDisplay.from_estimator(pipeline, x_test, y_test, ax=ax, name="champion candidate")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set_title("ROC curve, held-out test split")
    cm = Figure(figsize=(5, 4))
    ax = cm.subplots()
    ConfusionMatrixDisplay.from_estimator(pipeline, x_test, y_test, ax=ax, colorbar=False)
    ax.set_title("Confusion matrix at p >= 0.5, test split")
    return {"roc_curve.png": roc, "confusion_matrix.png": cm}


def model_card(summary: dict[str, Any], interval: tuple[float, float], n_train: int, n_test: int) -> str:
    """A short model card: data, metrics with uncertainty, intended use and limits."""
    params = ", ".join(f"{k}={v}" for k, v in summary["best_params"].items())
    return f"""# Model card: {summary["model_name"]} v{summary["model_version"]}

**Model**: StandardScaler + SVC ({params}) with sigmoid calibration (scikit-learn).
**Data**: UCI Cleveland heart data as republished on Kaggle, {n_train} training and {n_test} held-out
rows after de-duplication; data sha256 `{summary["data_sha256"]}`.

| metric | value |
|---|---|
| CV ROC-AUC ({summary["folds"]}-fold, training part) | {summary["cv_roc_auc"]:.3f} ± {summary["cv_roc_auc_std"]:.3f} |
| test ROC-AUC (95 % bootstrap interval) | {summary["test_roc_auc"]:.3f} ({interval[0]:.3f} to {interval[1]:.3f}) |
| test accuracy / F1 | {summary["test_accuracy"]:.3f} / {summary["test_f1"]:.3f} |
| test Brier score | {summary["test_brier"]:.3f} |

**Predicts**: {TARGET.label.lower()} (`{TARGET.name} = 1 - output`, the UCI diagnosis). {TARGET.meaning}

**Intended use**: teaching and demonstrating an MLOps workflow. **Not medical advice** and not a
medical device. **Limits**: 300 patients from one US clinic in 1988; the Kaggle republication's label
`output` is the inverse of the UCI diagnosis, so this model predicts `1 - output` (see data/README.md);
codes caa=4 and thall=0 stand for missing values.
"""


def _log_trial(client: MlflowClient, experiment_id: str, parent_id: str, trial: Trial, best_so_far: float) -> None:
    """One child run per trial (params and CV scores, no model) and the parent's best-so-far curve."""
    now = int(time.time() * 1000)
    child = client.create_run(
        experiment_id, tags={MLFLOW_PARENT_RUN_ID: parent_id, MLFLOW_RUN_NAME: f"trial-{trial.number:03d}"}
    )
    client.log_batch(
        child.info.run_id,
        metrics=[
            Metric("cv_roc_auc", trial.cv_mean, now, 0),
            Metric("cv_roc_auc_std", trial.cv_std, now, 0),
            Metric("fit_seconds", trial.seconds, now, 0),
        ],
        params=[Param(k, str(v)) for k, v in trial.params.items()],
        tags=[RunTag("trial", str(trial.number))],
    )
    client.set_terminated(child.info.run_id)
    client.log_metric(parent_id, "best_cv_roc_auc_so_far", best_so_far, step=trial.number)


def run_training(
    *,
    settings: Settings,
    experiment: str,
    data_path: Path,
    x_train: pd.DataFrame,
    x_test: pd.DataFrame,
    y_train: pd.Series,
    y_test: pd.Series,
    trials: int,
    folds: int,
    seed: int,
    log: Callable[..., None],
) -> dict[str, Any]:
    """Search with one MLflow child run per trial, then fit, log, register and gate the best model."""
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    client = MlflowClient()
    exp = mlflow.set_experiment(experiment)
    started = time.perf_counter()
    with mlflow.start_run(run_name=f"hyperopt-{trials}-trials") as parent:
        parent_id = parent.info.run_id
        best = {"score": -1.0}
        pending: list[Future[None]] = []

        def on_trial(trial: Trial) -> None:
            best["score"] = max(best["score"], trial.cv_mean)
            pending.append(logger_thread.submit(_log_trial, client, exp.experiment_id, parent_id, trial, best["score"]))
            shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
            log(
                "trial %d/%d  cv_roc_auc %.4f ± %.4f  best %.4f  (%s)",
                trial.number,
                trials,
                trial.cv_mean,
                trial.cv_std,
                best["score"],
                shown,
            )

        # MLflow calls go to one background thread so that HTTP round trips overlap the next trial's CV.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-trials") as logger_thread:
            result = search(x_train, y_train, trials=trials, folds=folds, seed=seed, on_trial=on_trial)
        for future in pending:
            future.result()  # re-raise the first logging failure, if any
        pipeline = svc_pipeline(result.best_params, calibrated=True, folds=folds).fit(x_train, y_train)
        metrics = evaluate(pipeline, x_test, y_test)
        proba = pipeline.predict_proba(x_test)[:, 1]
        interval = bootstrap_auc_interval(y_test, proba, seed=seed)
        sha = data_mod.sha256(data_path)

        mlflow.log_params({f"best_{k}": v for k, v in result.best_params.items()})
        mlflow.log_params(
            {
                "trials": trials,
                "folds": folds,
                "seed": seed,
                "data_path": str(data_path),
                "data_sha256": sha,
                "train_rows": len(x_train),
                "test_rows": len(x_test),
            }
        )
        mlflow.log_metrics(
            {
                "cv_roc_auc": result.best_cv_mean,
                "cv_roc_auc_std": result.best_cv_std,
                "test_roc_auc_ci_low": interval[0],
                "test_roc_auc_ci_high": interval[1],
                **metrics,
            }
        )
        for name, figure in _plots(pipeline, x_test, y_test).items():
            mlflow.log_figure(figure, name)

        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=_signature(pipeline, x_train),
            input_example=x_train.head(3),
            registered_model_name=settings.model_name,
            pyfunc_predict_fn="predict_proba",
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            skops_trusted_types=trusted_sklearn_types(pipeline),
        )
        version = str(info.registered_model_version)
        decision = registry.promote_if_better(
            client, settings.model_name, settings.champion_alias, version, result.best_cv_mean, TARGET.name
        )
        mlflow.log_dict(decision.as_dict(), "promotion_decision.json")
        mlflow.log_metric("promoted", int(decision.promoted))
        mlflow.set_tags({"promoted": str(decision.promoted).lower(), "model_version": version})
        log("promotion: %s -> %s", decision.reason, "PROMOTED" if decision.promoted else "not promoted")

        summary: dict[str, Any] = {
            "run_id": parent_id,
            "experiment": experiment,
            "model_name": settings.model_name,
            "model_version": version,
            "promoted": decision.promoted,
            "promotion_reason": decision.reason,
            "champion_version": version if decision.promoted else decision.champion_version,
            "cv_roc_auc": result.best_cv_mean,
            "cv_roc_auc_std": result.best_cv_std,
            **metrics,
            "test_roc_auc_ci": list(interval),
            "best_params": result.best_params,
            "trials": trials,
            "folds": folds,
            "seed": seed,
            "data_sha256": sha,
            "seconds": round(time.perf_counter() - started, 2),
            "run_url": settings.mlflow_run_url(exp.experiment_id, parent_id),
        }
        mlflow.log_text(model_card(summary, interval, len(x_train), len(x_test)), "model_card.md")
    publish_summary(summary, decision)
    return summary


@task(name="publish-training-summary", cache_policy=NO_CACHE)
def publish_summary(summary: dict[str, Any], decision: registry.Decision) -> None:
    """Prefect markdown artifact: what the ML engineer sees in the Prefect UI after a run."""
    from prefect.artifacts import create_markdown_artifact

    old = "none" if decision.champion_score is None else f"{decision.champion_score:.4f} (v{decision.champion_version})"
    rows = "\n".join(
        f"| {label} | {summary[key]:.4f} |"
        for key, label in [
            ("cv_roc_auc", "CV ROC-AUC"),
            ("test_roc_auc", "test ROC-AUC"),
            ("test_accuracy", "test accuracy"),
            ("test_f1", "test F1"),
            ("test_brier", "test Brier"),
        ]
    )
    markdown = f"""# Training summary

| metric | value |
|---|---|
{rows}

**Best parameters**: `{summary["best_params"]}`

**Promotion**: {"promoted" if decision.promoted else "not promoted"}: model
`{summary["model_name"]}` v{summary["model_version"]} scored {decision.new_score:.4f}; champion before: {old}.
{decision.reason}.

[MLflow run]({summary["run_url"]})
"""
    create_markdown_artifact(markdown=markdown, key="training-summary", description="HeartRisk training run")


@task(name="load-and-validate-data")
def load_data(path: str) -> pd.DataFrame:
    frame = data_mod.load_csv(path)
    return data_mod.deduplicate(frame)


# Async for the reason given at monitor_flow (no wait on Prefect's heartbeat thread); the work stays sync.
@flow(name="heart-attack-training", log_prints=True)
async def train_flow(
    trials: int | None = None,
    folds: int | None = None,
    seed: int | None = None,
    data: str | None = None,
    experiment: str | None = None,
) -> dict[str, Any]:
    """Tune, track, register, and promote the model only if it is at least as good as the champion.

    Returns the summary that ``heartrisk train`` prints as its last line.
    """
    settings = get_settings()
    trials = trials or settings.trials
    folds = folds or settings.folds
    seed = settings.seed if seed is None else seed
    data_path = Path(data or settings.data_path)
    experiment = experiment or settings.experiment_name
    logger = get_run_logger()

    frame = load_data(str(data_path))
    x_train, x_test, y_train, y_test = data_mod.split(frame, test_size=settings.test_size, seed=seed)
    logger.info(
        "data %s: %d unique rows, %d train / %d test; search: %d trials, %d-fold CV, seed %d",
        data_path.name,
        len(frame),
        len(x_train),
        len(x_test),
        trials,
        folds,
        seed,
    )
    summary = run_training(
        settings=settings,
        experiment=experiment,
        data_path=data_path,
        x_train=x_train,
        x_test=x_test,
        y_train=y_train,
        y_test=y_test,
        trials=trials,
        folds=folds,
        seed=seed,
        log=logger.info,
    )
    logger.info("summary: %s", json.dumps(summary))
    return summary
