"""What a training or monitoring run found, as typed results, and how each one is shown.

The flows return these objects; they become JSON only at the edges (the ``heartrisk`` command's last
line, Prefect artifacts), and each has one text rendering for people. No heavy imports here: the
command line loads this module before it starts anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

TEST_METRICS = (
    ("test_roc_auc", "test ROC-AUC"),
    ("test_accuracy", "test accuracy"),
    ("test_f1", "test F1"),
    ("test_brier", "test Brier"),
)
BASELINES = (  # the untuned peers the search reports on its own folds (model.search)
    ("untuned_svc", "untuned SVC"),
    ("logistic_regression", "logistic regression"),
)


@dataclass(frozen=True)
class Promotion:
    """Outcome of the promotion gate: whether the new version became champion, and why."""

    promoted: bool
    new_version: str
    new_score: float
    champion_version: str | None  # the champion before this decision
    champion_score: float | None
    reason: str

    def champion_after(self) -> str | None:
        return self.new_version if self.promoted else self.champion_version


@dataclass(frozen=True)
class TrainingSummary:
    """One training run: the search, the held-out metrics, registration and the gate's decision."""

    run_id: str
    experiment: str
    model_name: str
    cv_roc_auc: float
    cv_roc_auc_std: float
    metrics: dict[str, float]
    test_roc_auc_ci: tuple[float, float]
    best_params: dict[str, Any]
    trials: int
    folds: int
    seed: int
    data_sha256: str
    seconds: float
    run_url: str
    promotion: Promotion
    registered: bool = True
    registration_reason: str = ""
    serving_runtime: str = ""  # onnxruntime, or scikit-learn when the ONNX export failed or disagreed
    onnx_export: str = ""  # the export's check, or why there is no export
    repeats: int = 1
    baselines: dict[str, tuple[float, float]] = field(default_factory=dict)  # name: (CV mean, sd), same folds

    def to_json(self) -> dict[str, Any]:
        """The ``heartrisk train`` contract: the keys scripts rely on, in their usual order."""
        return {
            "run_id": self.run_id,
            "experiment": self.experiment,
            "model_name": self.model_name,
            "model_version": self.promotion.new_version,
            "promoted": self.promotion.promoted,
            "promotion_reason": self.promotion.reason,
            "champion_version": self.promotion.champion_after(),
            "cv_roc_auc": self.cv_roc_auc,
            "cv_roc_auc_std": self.cv_roc_auc_std,
            **self.metrics,
            "test_roc_auc_ci": list(self.test_roc_auc_ci),
            "best_params": self.best_params,
            "trials": self.trials,
            "folds": self.folds,
            "seed": self.seed,
            "data_sha256": self.data_sha256,
            "seconds": self.seconds,
            "run_url": self.run_url,
            "registered": self.registered,
            "registration_reason": self.registration_reason,
            "serving_runtime": self.serving_runtime,
            "onnx_export": self.onnx_export,
            "repeats": self.repeats,
            "baselines": {
                name: {"cv_roc_auc": mean, "cv_roc_auc_std": std} for name, (mean, std) in self.baselines.items()
            },
        }

    def versus_baselines(self) -> str:
        """The peers on the same folds as the champion's CV score: what tuning bought."""
        return ", ".join(
            f"{label} {self.baselines[name][0]:.4f}" for name, label in BASELINES if name in self.baselines
        )

    def lines(self) -> list[str]:
        """What ``heartrisk train`` prints for a person, before the JSON line."""
        verdict = "promoted to champion" if self.promotion.promoted else "NOT promoted"
        metrics = "   ".join(f"{label.removeprefix('test ')} {self.metrics[key]:.4f}" for key, label in TEST_METRICS)
        model = f"{self.model_name} v{self.promotion.new_version}: {verdict} ({self.promotion.reason})"
        if not self.registered:
            model = f"{self.model_name}: nothing new registered ({self.registration_reason})"
        return [
            "",
            f"Training finished in {self.seconds} s ({self.trials} trials, {self.folds}-fold CV x {self.repeats})",
            f"  best params    {self.best_params}",
            f"  CV ROC-AUC     {self.cv_roc_auc:.4f} ± {self.cv_roc_auc_std:.4f}",
            f"  same folds     {self.versus_baselines()}",
            f"  test           {metrics}",
            f"  model          {model}",
            f"  served by      {self.serving_runtime} ({self.onnx_export})",
            f"  MLflow run     {self.run_url}",
        ]

    def markdown(self) -> str:
        """The Prefect artifact the ML engineer reads on the flow run's page."""
        promotion = self.promotion
        old = (
            "none"
            if promotion.champion_score is None
            else f"{promotion.champion_score:.4f} (v{promotion.champion_version})"
        )
        peers = [
            (f"CV ROC-AUC, {label}", self.baselines[name][0]) for name, label in BASELINES if name in self.baselines
        ]
        rows = [("CV ROC-AUC", self.cv_roc_auc), *peers, *((label, self.metrics[key]) for key, label in TEST_METRICS)]
        table = "\n".join(f"| {label} | {value:.4f} |" for label, value in rows)
        outcome = "promoted" if promotion.promoted else "not promoted"
        if not self.registered:
            outcome = f"nothing new registered: {self.registration_reason}"
        return f"""# Training summary

| metric | value |
|---|---|
{table}

**Best parameters**: `{self.best_params}`

**Promotion**: {outcome}: model `{self.model_name}` v{promotion.new_version} scored {promotion.new_score:.4f};
champion before: {old}. {promotion.reason}.

**Served by**: {self.serving_runtime} ({self.onnx_export}).

[MLflow run]({self.run_url})
"""


@dataclass(frozen=True)
class Failed:
    """A step of a run that could not be done, and why; the JSON shows it as ``{"error": reason}``."""

    reason: str


@dataclass(frozen=True)
class TrackedRun:
    """The monitoring run's MLflow run."""

    run_id: str
    run_url: str


@dataclass(frozen=True)
class DashboardEntry:
    """The monitoring run's snapshot in the Evidently workspace."""

    project_id: str
    snapshot_id: str
    url: str


@dataclass(frozen=True)
class Retraining:
    """The training run a monitoring run started."""

    deployment: str
    flow_run_id: str
    flow_run_name: str


@dataclass(frozen=True)
class MonitorSummary:
    """One monitoring run: what was compared, the verdict, and what was done about it."""

    current_source: str
    reference: str
    current_rows: int  # rows in the window (or the CSV)
    reference_rows: int
    threshold: float
    status: str
    drift_detected: bool
    share: float | None
    drifted_columns: list[str]
    columns: list[dict[str, Any]] = field(default_factory=list)
    report_path: str | None = None
    latest_report: str | None = None
    mlflow: TrackedRun | Failed | None = None
    retraining: Retraining | Failed | None = None
    email: dict[str, Any] | None = None
    sampled_rows: int | None = None  # rows compared when the window was sampled (HEARTRISK_DRIFT_MAX_ROWS)
    model_versions: dict[str, int] = field(default_factory=dict)  # rows per model version in the window
    prediction_drift: dict[str, Any] | None = None  # PredictionDrift.to_json(), or why it was not computed
    dashboard: DashboardEntry | Failed | None = None  # the run's snapshot in the Evidently UI

    @property
    def run_url(self) -> str:
        return link(self.mlflow)

    @property
    def dashboard_url(self) -> str:
        return link(self.dashboard)

    @property
    def problems(self) -> dict[str, str]:
        """Where the report could not be kept, and why (the e-mail says it, then the run fails)."""
        kept = {"MLflow": self.mlflow, "Evidently's workspace": self.dashboard}
        return {where: value.reason for where, value in kept.items() if isinstance(value, Failed)}

    def to_json(self) -> dict[str, Any]:
        """The ``heartrisk monitor`` contract; a run with too little data has no report keys.

        ``sampled_rows`` follows ``current_rows``; the keys added since the first release come last.
        """
        ordered = {}
        for key in (f.name for f in fields(self)):
            if key != "sampled_rows":
                ordered[key] = _plain(getattr(self, key))
            if key == "current_rows":
                ordered["sampled_rows"] = self.sampled_rows
        if self.share is None:
            for key in ("columns", "report_path", "latest_report", "mlflow", "retraining", "prediction_drift"):
                ordered.pop(key)
            ordered.pop("dashboard")
        return ordered

    def lines(self) -> list[str]:
        """What ``heartrisk monitor`` prints for a person, before the JSON line."""
        rows = f"{self.current_rows} current rows"
        if self.sampled_rows is not None:
            rows += f", {self.sampled_rows} of them compared (a random sample)"
        lines = ["", f"Drift monitoring: {self.status} ({rows})"]
        email = self.email or {"sent": False}
        sent = "sent to " + ", ".join(email.get("recipients", [])) if email["sent"] else "not sent"
        if self.share is None:
            return [*lines, f"  e-mail           {sent}"]
        return [
            *lines,
            f"  drifted columns  {len(self.drifted_columns)}/{len(self.columns)}"
            f" ({self.share:.0%}, alert at {self.threshold:.0%}): {', '.join(self.drifted_columns)}",
            f"  predictions      {prediction_line(self.prediction_drift)}",
            f"  model versions   {versions_line(self.model_versions)}",
            f"  report           {self.latest_report}",
            f"  dashboard        {_shown(self.dashboard, self.dashboard_url)}",
            f"  MLflow           {_shown(self.mlflow, self.run_url)}",
            f"  retraining       {_plain(self.retraining) or 'not started'}",
            f"  e-mail           {sent}",
        ]


def link(kept: TrackedRun | DashboardEntry | Failed | None) -> str:
    """Where people open what a step kept (the MLflow run, the dashboard's snapshot); "" when it failed."""
    if isinstance(kept, TrackedRun):
        return kept.run_url
    return kept.url if isinstance(kept, DashboardEntry) else ""


def _plain(value: Any) -> Any:
    """A step's result as JSON: a failure as ``{"error": reason}``, a record as its fields."""
    if isinstance(value, Failed):
        return {"error": value.reason}
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def _shown(value: Any, url: str) -> str | None:
    return value.reason if isinstance(value, Failed) else url or None


def prediction_line(drift: dict[str, Any] | None) -> str:
    """The prediction drift in one line, for the command's output and the e-mail."""
    if not drift or drift.get("detected") is None:
        return f"prediction drift not computed: {(drift or {}).get('reason', 'no predictions')}"
    verdict = "drifted" if drift["detected"] else "did not drift"
    mean, positive = drift["mean_probability"], drift["positive_rate"]
    return (
        f"the probability {verdict} ({drift['method']} {drift['score']:.4g}, threshold {drift['threshold']:g}); "
        f"mean {mean['current']:.3f} against {mean['reference']:.3f} on the reference, "
        f"positive rate {positive['current']:.0%} against {positive['reference']:.0%}"
    )


def versions_line(versions: dict[str, int]) -> str:
    """Rows per model version, e.g. ``v3: 1200, v4: 300`` (a promotion in the window shows as two)."""
    return ", ".join(f"v{version}: {rows}" for version, rows in versions.items()) or "none (not from the log)"
