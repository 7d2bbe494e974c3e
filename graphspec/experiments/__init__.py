"""Experiments over specs: hyperparameter sweeps on Optuna and the comparison of runs (and, beside them,
the resolved spec with provenance and a semantic diff of two specs).

Sits above run/ and importer/: a sweep trains its trials through :mod:`graphspec.run.trainer`, after the
pure stages have checked each trial's values; plain data goes to render/ for people to read.
"""
