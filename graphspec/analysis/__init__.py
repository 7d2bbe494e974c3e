"""Stage 2, what is known before anything runs: graph resolution, cross-field checks, static shapes.

``graph`` resolves names and edges, ``shapecheck`` drives the per-family rules of
``shapes/`` over a model, ``checks`` and ``run_checks`` relate fields to each other,
``drawing`` lays out what a plot shows. Never imports a backend.
"""
