"""Experiments over specs: the resolved spec with provenance and a semantic diff of two specs (through the
pure stages, never a backend), hyperparameter sweeps on Optuna, and the comparison of runs.

Sits above run/ and importer/: a sweep trains its trials through :mod:`graphspec.run.trainer`, after the
pure stages have checked each trial's values; plain data goes to render/ for people to read.
"""
