"""HeartRisk: train, serve and watch a heart-attack risk model."""

__version__ = "0.1.0"
