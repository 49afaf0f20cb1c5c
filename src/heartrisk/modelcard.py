"""The model card logged with every registered model: data, metrics with uncertainty, use and limits."""

from __future__ import annotations

from heartrisk.schema import TARGET
from heartrisk.summaries import TrainingSummary


def render(summary: TrainingSummary, *, train_rows: int, test_rows: int) -> str:
    """Markdown for ``model_card.md`` in the training run (MLflow shows it beside the model)."""
    params = ", ".join(f"{k}={v}" for k, v in summary.best_params.items())
    low, high = summary.test_roc_auc_ci
    metrics = summary.metrics
    return f"""# Model card: {summary.model_name} v{summary.promotion.new_version}

**Model**: StandardScaler + SVC ({params}) with sigmoid calibration (scikit-learn).
**Served by**: {summary.serving_runtime} ({summary.onnx_export}).
**Data**: UCI Cleveland heart data as republished on Kaggle, {train_rows} training and {test_rows} held-out
rows after de-duplication; data sha256 `{summary.data_sha256}`.

| metric | value |
|---|---|
| CV ROC-AUC ({summary.folds}-fold, training part) | {summary.cv_roc_auc:.3f} ± {summary.cv_roc_auc_std:.3f} |
| test ROC-AUC (95 % bootstrap interval) | {metrics["test_roc_auc"]:.3f} ({low:.3f} to {high:.3f}) |
| test accuracy / F1 | {metrics["test_accuracy"]:.3f} / {metrics["test_f1"]:.3f} |
| test Brier score | {metrics["test_brier"]:.3f} |

**Predicts**: {TARGET.label.lower()} (`{TARGET.name} = 1 - output`, the UCI diagnosis). {TARGET.meaning}

**Intended use**: teaching and demonstrating an MLOps workflow. **Not medical advice** and not a
medical device. **Limits**: 300 patients from one US clinic in 1988; the Kaggle republication's label
`output` is the inverse of the UCI diagnosis, so this model predicts `1 - output` (see data/README.md);
codes caa=4 and thall=0 stand for missing values.
"""
