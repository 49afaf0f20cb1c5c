"""The public names of HeartRisk's moving parts, in one place.

Users, scripts and the original project's instructions rely on them (the Prefect UI's deployment names,
the work pool, the MLflow experiment and registered model), so they change only on purpose.
``prefect.yaml`` repeats the deployment names and entrypoints; a unit test holds it to this module.
"""

from __future__ import annotations

TRAIN_FLOW = "heart-attack-training"
MONITOR_FLOW = "heart-attack-drift-monitoring"
PURGE_FLOW = "prediction-log-retention"

TRAIN_DEPLOYMENT = "train-heart-attack-model"
MONITOR_DEPLOYMENT = "monitor-heart-attack-data-drift"
PURGE_DEPLOYMENT = "purge-old-predictions"
DEPLOYMENTS = (TRAIN_DEPLOYMENT, MONITOR_DEPLOYMENT, PURGE_DEPLOYMENT)

WORK_POOL = "zoompool"

MODEL = "BestSupportVectorClassifier"
INFERENCE_MODEL = "heartrisk"  # the model's name in the Open Inference Protocol's paths (/v2/models/heartrisk)
CHAMPION_ALIAS = "champion"
TRAIN_EXPERIMENT = "heart-attack-hyperopt"
MONITOR_EXPERIMENT = "heart-attack-monitoring"

EVIDENTLY_PROJECT = "HeartRisk monitoring"  # the Evidently UI's project of every monitoring run

TRAINING_SUMMARY_ARTIFACT = "training-summary"
DRIFT_TABLE_ARTIFACT = "drift-columns"


def deployment_path(flow: str, deployment: str) -> str:
    """The ``flow/deployment`` form that ``prefect deployment run`` and ``run_deployment`` take."""
    return f"{flow}/{deployment}"
