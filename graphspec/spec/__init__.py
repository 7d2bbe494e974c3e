"""Stage 1, text -> a typed, located Spec: source (YAML + position map), overrides, expand, schema, parse.

Also the layer-argument checks, the catalog of Keras names, and the static read of
plugin files. Never imports a backend (an import-linter contract keeps it so).
"""
