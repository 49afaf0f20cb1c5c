"""The model card: what the model is, its metrics with their uncertainty, and what it predicts."""

from __future__ import annotations

from heartrisk import modelcard
from heartrisk.schema import TARGET
from tests.support.summaries import training


def test_the_card_states_the_model_the_metrics_with_interval_and_the_meaning() -> None:
    card = modelcard.render(training(), train_rows=241, test_rows=61)
    assert card.startswith("# Model card: M v4")
    assert "SVC (kernel=rbf, C=1.0) with sigmoid calibration" in card
    assert "241 training and 61 held-out" in card
    assert "**Served by**: onnxruntime (ONNX export matches scikit-learn on 241 training rows" in card
    assert "| test ROC-AUC (95 % bootstrap interval) | 0.930 (0.880 to 0.970) |" in card
    assert "| CV ROC-AUC (5-fold x 5 repeats, training part) | 0.910 ± 0.020 |" in card
    assert TARGET.meaning in card and "`disease = 1 - output`" in card


def test_the_card_puts_the_untuned_peers_beside_the_champion_on_the_same_folds() -> None:
    card = modelcard.render(training(), train_rows=241, test_rows=61)
    assert "CV ROC-AUC on the same 25 folds (5-fold x 5 repeats of the training part)" in card
    rows = ["| champion, best of 50 trials | 0.910 ± 0.020 |", "| untuned SVC | 0.890 ± 0.030 |"]
    rows += ["| logistic regression | 0.900 ± 0.025 |"]
    assert "\n".join(rows) in card


def test_the_card_states_the_intended_use_of_its_version() -> None:
    card = modelcard.render(training(), train_rows=241, test_rows=61)
    assert f"**Intended use of version 4**: {modelcard.INTENDED_USE}" in card
    assert "not a 10-year risk" in modelcard.INTENDED_USE and "not a diagnosis" in modelcard.INTENDED_USE
