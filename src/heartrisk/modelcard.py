"""The model card logged with every registered model: data, metrics with uncertainty, use and limits."""

from __future__ import annotations

from heartrisk.schema import TARGET
from heartrisk.summaries import BASELINES, TrainingSummary

INTENDED_USE = (  # whom the number is for and what it is not: above the form and in this card, with the version
    "For clinicians, students and patients who want to see what the 1988 Cleveland study associates with "
    "coronary artery disease in adults like its patients: 29 to 77 years old, referred for angiography, most "
    "with chest pain. The number is a diagnostic probability from that study (how likely such a person had a "
    "narrowed heart vessel at the time), not a 10-year risk of a heart attack or stroke (risk calculators "
    "such as ASCVD or QRISK3 give that), not a diagnosis, and not a reason to start, stop or delay any "
    "test or treatment. HeartRisk is a teaching project, not a medical device."
)


def render(summary: TrainingSummary, *, train_rows: int, test_rows: int) -> str:
    """Markdown for ``model_card.md`` in the training run (MLflow shows it beside the model)."""
    from heartrisk.explain import BACKGROUND_ROWS  # here: the form reads INTENDED_USE, and explains only when asked

    params = ", ".join(f"{k}={v}" for k, v in summary.best_params.items())
    low, high = summary.test_roc_auc_ci
    metrics = summary.metrics
    cv = f"{summary.folds}-fold x {summary.repeats} repeats"
    return f"""# Model card: {summary.model_name} v{summary.promotion.new_version}

**Model**: StandardScaler + SVC ({params}) with sigmoid calibration (scikit-learn).
**Served by**: {summary.serving_runtime} ({summary.onnx_export}).
**Data**: UCI Cleveland heart data as republished on Kaggle, {train_rows} training and {test_rows} held-out
rows after de-duplication; data sha256 `{summary.data_sha256}`.

| metric | value |
|---|---|
| CV ROC-AUC ({cv}, training part) | {summary.cv_roc_auc:.3f} ± {summary.cv_roc_auc_std:.3f} |
| test ROC-AUC (95 % bootstrap interval) | {metrics["test_roc_auc"]:.3f} ({low:.3f} to {high:.3f}) |
| test accuracy / F1 | {metrics["test_accuracy"]:.3f} / {metrics["test_f1"]:.3f} |
| test Brier score | {metrics["test_brier"]:.3f} |

{_what_tuning_bought(summary, cv)}

**Predicts**: {TARGET.label.lower()} (`{TARGET.name} = 1 - output`, the UCI diagnosis). {TARGET.meaning}

**Intended use of version {summary.promotion.new_version}**: {INTENDED_USE} It also demonstrates an MLOps
workflow. **Not medical advice**. **Explanations**: `POST /api/v1/explain` and the form give each value's
exact Shapley contribution against {BACKGROUND_ROWS} typical patients of the study: associations in one
study, not causes.
**Limits**: 300 patients from one US clinic in 1988; the Kaggle republication's label
`output` is the inverse of the UCI diagnosis, so this model predicts `1 - output` (see data/README.md);
codes caa=4 and thall=0 stand for missing values.
"""


def _what_tuning_bought(summary: TrainingSummary, cv: str) -> str:
    """The untuned peers on the champion's own CV folds, so a reader sees what the search added."""
    folds = summary.folds * summary.repeats
    rows = [f"| champion, best of {summary.trials} trials | {summary.cv_roc_auc:.3f} ± {summary.cv_roc_auc_std:.3f} |"]
    rows += [
        f"| {label} | {summary.baselines[name][0]:.3f} ± {summary.baselines[name][1]:.3f} |"
        for name, label in BASELINES
        if name in summary.baselines
    ]
    table = "\n".join(rows)
    return f"""**What tuning bought**: CV ROC-AUC on the same {folds} folds ({cv} of the training part), mean ± sd.

| pipeline | CV ROC-AUC |
|---|---|
{table}

The untuned SVC is StandardScaler + SVC() with scikit-learn's defaults (the search's first trial); the
logistic regression is StandardScaler + LogisticRegression(). The champion's figure is the best of
{summary.trials} on these folds, so it flatters the champion: measured on patients the search did not see
(nested CV, docs/BENCHMARKS.md), tuning buys less than this table suggests."""
