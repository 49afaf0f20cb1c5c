"""HeartRisk: train, serve and watch a model of coronary artery disease, a main cause of heart attacks.

Importing the package switches the telemetry of the libraries it runs off by default, turns their
chatter down and locks MLflow's model deserialisation (:mod:`heartrisk.environment`), so every entry point
(the ``heartrisk`` command, the gunicorn config, flow runs, benchmarks, tests) does it before MLflow,
Prefect or Evidently load.
"""

from heartrisk.environment import forbid_unpickling, quiet_libraries, switch_telemetry_off

__version__ = "0.1.0"

switch_telemetry_off()
quiet_libraries()
forbid_unpickling()
