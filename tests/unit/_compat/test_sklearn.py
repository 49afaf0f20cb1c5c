"""The calibration types skops does not trust by default: exactly those of a calibrated pipeline, and enough.

Checked on scikit-learn 1.9 and skops 0.16: the first test fails when scikit-learn renames its calibration
classes or skops starts trusting them (then the list can go), the second when the list no longer loads one.
"""

from __future__ import annotations

import numpy as np
import skops.io

from heartrisk._compat.sklearn import CALIBRATION_INTERNALS
from tests.support.models import fit_pipeline, training_rows


def test_a_calibrated_pipeline_holds_exactly_these_untrusted_types() -> None:
    data = skops.io.dumps(fit_pipeline())
    assert sorted(skops.io.get_untrusted_types(data=data)) == sorted(CALIBRATION_INTERNALS)


def test_skops_builds_a_calibrated_pipeline_from_these_types_alone() -> None:
    pipeline = fit_pipeline()
    loaded = skops.io.loads(skops.io.dumps(pipeline), trusted=list(CALIBRATION_INTERNALS))
    rows = training_rows().to_numpy(float)
    assert np.array_equal(loaded.predict_proba(rows), pipeline.predict_proba(rows))
