"""Monitoring: the Prefect flow that compares served data with the reference data and acts on the result.

:mod:`~heartrisk.monitoring.flow` reads top to bottom: read (:mod:`~heartrisk.monitoring.current`, the
window of the prediction log or a CSV; :mod:`~heartrisk.monitoring.reference`, the reference with the
champion's scores), compare (Evidently, in :mod:`heartrisk.evidently_report`), keep the report
(:mod:`~heartrisk.monitoring.report`), decide (:mod:`~heartrisk.monitoring.rules`), act and mail.
"""
