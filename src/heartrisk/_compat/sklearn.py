"""The scikit-learn types a calibrated pipeline holds that skops does not trust by default, by name.

Loading a version, skops is told which types to build from this list, in our code, never from the model
file (MLflow would pass the list the file's own MLmodel names, which whoever wrote the file chose). They
are scikit-learn's private calibration classes, so they live here.

Checked on scikit-learn 1.9 and skops 0.16 (``tests/unit/_compat/test_sklearn.py`` fails when a calibrated
pipeline holds other untrusted types). Can go when skops trusts scikit-learn's calibration classes itself.
"""

from __future__ import annotations

CALIBRATION_INTERNALS = (
    "sklearn.calibration._CalibratedClassifier",  # one fitted classifier and its calibrators
    "sklearn.calibration._SigmoidCalibration",  # method="sigmoid"
)
