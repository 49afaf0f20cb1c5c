"""The stack: the programs that run HeartRisk (``processes``) and what sets a fresh stack up (``bootstrap``)."""
