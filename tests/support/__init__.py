"""Helpers shared by the tests: paths, real servers on free ports, the app, models, load, mail."""
