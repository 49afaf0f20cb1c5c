"""Training: a Prefect flow that tunes the SVC pipeline with hyperopt, tracks it in MLflow, registers
the best model and promotes it only if it is at least as good as the champion.

Each stage is a task, so the Prefect UI shows which one is slow or failed: load-and-split, search (one
MLflow child run per trial, parameters and scores only: no model per trial), fit-and-evaluate,
log-to-mlflow, register-and-gate, publish (model card and the summary artifact).
"""

from __future__ import annotations

import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import SyncClientContext
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay
from sklearn.pipeline import Pipeline

from heartrisk import data as data_mod
from heartrisk import export, modelcard, names, registry, signing, tracking
from heartrisk.config import get_settings
from heartrisk.model import SearchResult, Trial, bootstrap_auc_interval, evaluate, search, svc_pipeline
from heartrisk.schema import TARGET
from heartrisk.settings import MlflowSettings, Settings
from heartrisk.summaries import Promotion, TrainingSummary

STEP = {"cache_policy": NO_CACHE}  # tasks pass frames and models in memory; nothing to cache or persist


@dataclass(frozen=True)
class Plan:
    """One run's settings after defaults: what the flow's parameters resolved to."""

    trials: int
    folds: int
    repeats: int
    seed: int
    data_path: Path
    experiment: str

    @classmethod
    def of(cls, settings: Settings, **given: Any) -> Plan:
        """The search section, the data and the MLflow experiment, unless the run was given its own."""
        defaults, seed = settings.search, given.get("seed")
        return cls(
            trials=given.get("trials") or defaults.trials,
            folds=given.get("folds") or defaults.folds,
            repeats=given.get("repeats") or defaults.repeats,
            seed=defaults.seed if seed is None else seed,
            data_path=Path(given.get("data") or settings.data_path),
            experiment=given.get("experiment") or settings.mlflow.experiment_name,
        )

    def search_settings(self) -> dict[str, int]:
        """What the search's result depends on, besides the data."""
        return {"trials": self.trials, "folds": self.folds, "repeats": self.repeats, "seed": self.seed}


@dataclass(frozen=True)
class Split:
    """The de-duplicated data, split once: the test part is never seen by the search."""

    x_train: pd.DataFrame
    x_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    data_sha256: str


@dataclass(frozen=True)
class Fitted:
    """The calibrated pipeline of the best parameters, its held-out evaluation and its ONNX export."""

    pipeline: Pipeline
    metrics: dict[str, float]
    interval: tuple[float, float]
    exported: export.Export


@task(name="load-and-split", **STEP)
def load_and_split(path: Path, test_size: float, seed: int) -> Split:
    frame = data_mod.deduplicate(data_mod.load_csv(path))
    x_train, x_test, y_train, y_test = data_mod.split(frame, test_size=test_size, seed=seed)
    get_run_logger().info(
        "data %s: %d unique rows, %d train / %d test", path.name, len(frame), len(x_train), len(x_test)
    )
    return Split(x_train, x_test, y_train, y_test, data_mod.sha256(path))


def _log_trial(client: MlflowClient, experiment_id: str, parent_id: str, trial: Trial, best_so_far: float) -> None:
    """One child run per trial (params and CV scores, no model) and the parent's best-so-far curve."""
    tags = {MLFLOW_PARENT_RUN_ID: parent_id, MLFLOW_RUN_NAME: f"trial-{trial.number:03d}", "trial": str(trial.number)}
    child = client.create_run(experiment_id, tags=tags).info.run_id
    scores = {"cv_roc_auc": trial.cv_mean, "cv_roc_auc_std": trial.cv_std, "fit_seconds": trial.seconds}
    tracking.log_batch(client, child, metrics=scores, params=trial.params)
    client.set_terminated(child)
    client.log_metric(parent_id, "best_cv_roc_auc_so_far", best_so_far, step=trial.number)


@task(name="search", **STEP)
def search_trials(plan: Plan, split: Split, client: MlflowClient, run_id: str) -> SearchResult:
    """hyperopt over the training part; MLflow calls go to a background thread to overlap the next trial."""
    logger = get_run_logger()
    experiment_id = client.get_run(run_id).info.experiment_id
    best = -1.0
    pending: list[Future[None]] = []

    def on_trial(trial: Trial) -> None:
        nonlocal best
        best = max(best, trial.cv_mean)
        pending.append(background.submit(_log_trial, client, experiment_id, run_id, trial, best))
        shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
        logger.info(
            "trial %d/%d  cv_roc_auc %.4f ± %.4f  best %.4f  (%s)",
            *(trial.number, plan.trials, trial.cv_mean, trial.cv_std, best, shown),
        )

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-trials") as background:
        result = search(split.x_train, split.y_train, **plan.search_settings(), on_trial=on_trial)
    for future in pending:
        future.result()  # re-raise the first logging failure, if any
    return result


@task(name="fit-and-evaluate", **STEP)
def fit_and_evaluate(params: dict[str, Any], split: Split, folds: int, seed: int) -> Fitted:
    """Fit the best parameters with sigmoid calibration; metrics on the held-out split only; export to ONNX.

    The export is checked against the pipeline on every training row; without a good export the
    version is still registered, and served by scikit-learn.
    """
    pipeline = svc_pipeline(params, calibrated=True, folds=folds).fit(split.x_train, split.y_train)
    metrics = evaluate(pipeline, split.x_test, split.y_test)
    proba = pipeline.predict_proba(split.x_test)[:, 1]
    exported = export.export(pipeline, split.x_train)
    return Fitted(pipeline, metrics, bootstrap_auc_interval(split.y_test, proba, seed=seed), exported)


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


@task(name="log-to-mlflow", **STEP)
def log_run(client: MlflowClient, run_id: str, plan: Plan, split: Split, result: SearchResult, fitted: Fitted) -> None:
    """Parameters, metrics and plots of the parent run."""
    params = {f"best_{k}": v for k, v in result.best_params.items()}
    params |= {**plan.search_settings(), "data_path": str(plan.data_path)}
    params |= {"data_sha256": split.data_sha256, "train_rows": len(split.x_train), "test_rows": len(split.x_test)}
    params |= {"target": TARGET.name}
    metrics = {"cv_roc_auc": result.best_cv_mean, "cv_roc_auc_std": result.best_cv_std, **fitted.metrics}
    metrics |= {"test_roc_auc_ci_low": fitted.interval[0], "test_roc_auc_ci_high": fitted.interval[1]}
    for name, (mean, std) in result.baselines.items():  # the untuned peers, on the search's folds
        metrics |= {f"cv_roc_auc_{name}": mean, f"cv_roc_auc_{name}_std": std}
    tracking.log_batch(client, run_id, metrics=metrics, params=params)
    for name, figure in _plots(fitted.pipeline, split.x_test, split.y_test).items():
        client.log_figure(run_id, figure, name)


@task(name="register-and-gate", **STEP)
def register_and_gate(
    settings: MlflowSettings, run_id: str, fitted: Fitted, split: Split, result: SearchResult, plan: Plan
) -> tuple[Promotion, str]:
    """Register and sign the model unless the champion is the same model, signed with this key; promote only if
    at least as good. Returns the decision and, when nothing was registered, why (an identical retrain: same
    data, parameters, folds and target as the champion, so the same fitted model). A champion this key does
    not vouch for (a new key, a version from before signing) is registered again, signed, so that it serves."""
    models = registry.Registry.of(settings)
    key = signing.load_signing_key(settings.model_signing_key_file)
    mark = registry.fingerprint(
        data_sha256=split.data_sha256, params=result.best_params, folds=plan.folds, target=TARGET.name
    )
    current = models.champion()
    if current is not None and current.fingerprint == mark and models.signed_with(current, key.public_key()):
        reason = f"same data, parameters and target as champion v{current.version}: nothing new registered"
        decision = Promotion(False, current.version, result.best_cv_mean, current.version, current.score, reason)
        return decision, reason
    with mlflow.start_run(run_id=run_id), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # MLflow's hint on integer columns: inputs are validated
        version = registry.log_model(
            fitted.pipeline,
            registered_name=models.name,
            signing_key=key,
            example=split.x_train.head(3),
            exported=fitted.exported,
        )
    models.tag(version, {registry.FINGERPRINT_TAG: mark})
    return models.promote_if_better(version, result.best_cv_mean, TARGET.name, key.public_key()), ""


@task(name="publish", **STEP)
def publish(client: MlflowClient, run_id: str, summary: TrainingSummary, split: Split) -> None:
    """Model card and decision in MLflow, the summary artifact in Prefect; the parent run ends here."""
    from prefect.artifacts import create_markdown_artifact

    promotion = summary.promotion
    card = modelcard.render(summary, train_rows=len(split.x_train), test_rows=len(split.x_test))
    client.log_text(run_id, card, "model_card.md")
    client.log_dict(run_id, summary.to_json(), "promotion_decision.json")
    tags = {"promoted": str(promotion.promoted).lower(), "model_version": promotion.new_version}
    tags |= {"registered": str(summary.registered).lower(), "target": TARGET.name}
    tracking.log_batch(client, run_id, metrics={"promoted": int(promotion.promoted)}, tags=tags)
    client.set_terminated(run_id)
    create_markdown_artifact(
        markdown=summary.markdown(), key=names.TRAINING_SUMMARY_ARTIFACT, description="HeartRisk training run"
    )


# Async for the reason given at monitor_flow (no wait on Prefect's heartbeat thread); the steps stay sync.
@flow(name=names.TRAIN_FLOW, log_prints=True)
async def train_flow(
    trials: int | None = None,
    folds: int | None = None,
    repeats: int | None = None,
    seed: int | None = None,
    data: str | None = None,
    experiment: str | None = None,
) -> TrainingSummary:
    """Tune, track, register, and promote the model only if it is at least as good as the champion."""
    started = time.perf_counter()
    settings = get_settings()
    plan = Plan.of(settings, trials=trials, folds=folds, repeats=repeats, seed=seed, data=data, experiment=experiment)
    logger = get_run_logger()
    signing.load_signing_key(settings.mlflow.model_signing_key_file)  # before the search: a run that cannot sign
    with SyncClientContext.get_or_create():  # one Prefect client for every step
        split = load_and_split(plan.data_path, settings.search.test_size, plan.seed)
        client = MlflowClient(settings.mlflow.tracking_uri)
        run_id = tracking.start_run(client, plan.experiment, f"hyperopt-{plan.trials}-trials", tracking.TRAINING_TAG)
        try:
            logger.info(
                "search: %d trials, %d-fold CV x %d repeats, seed %d", plan.trials, plan.folds, plan.repeats, plan.seed
            )
            result = search_trials(plan, split, client, run_id)
            fitted = fit_and_evaluate(result.best_params, split, plan.folds, plan.seed)
            logger.info("serving runtime %s: %s", fitted.exported.runtime, fitted.exported.note())
            log_run(client, run_id, plan, split, result, fitted)
            promotion, not_registered = register_and_gate(settings.mlflow, run_id, fitted, split, result, plan)
            summary = _summary(settings.mlflow, plan, split, result, fitted, promotion, not_registered, run_id, started)
            publish(client, run_id, summary, split)
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
    logger.info("promotion: %s -> %s", promotion.reason, "PROMOTED" if promotion.promoted else "not promoted")
    return summary


def _summary(
    settings: MlflowSettings,
    plan: Plan,
    split: Split,
    result: SearchResult,
    fitted: Fitted,
    promotion: Promotion,
    not_registered: str,
    run_id: str,
    started: float,
) -> TrainingSummary:
    experiment_id = MlflowClient(settings.tracking_uri).get_run(run_id).info.experiment_id
    return TrainingSummary(
        run_id=run_id,
        experiment=plan.experiment,
        model_name=settings.model_name,
        cv_roc_auc=result.best_cv_mean,
        cv_roc_auc_std=result.best_cv_std,
        metrics=fitted.metrics,
        test_roc_auc_ci=fitted.interval,
        best_params=result.best_params,
        trials=plan.trials,
        folds=plan.folds,
        seed=plan.seed,
        repeats=plan.repeats,
        baselines=result.baselines,
        data_sha256=split.data_sha256,
        seconds=round(time.perf_counter() - started, 2),
        run_url=settings.run_url(experiment_id, run_id),
        promotion=promotion,
        registered=not not_registered,
        registration_reason=not_registered,
        serving_runtime=fitted.exported.runtime,
        onnx_export=fitted.exported.note(),
    )
