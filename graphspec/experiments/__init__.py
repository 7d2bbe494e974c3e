"""Experiments over specs: the resolved spec with provenance, and a semantic diff of two specs.

Sits beside run/ and importer/, above the compiler: it reads specs through the pure
stages (never a backend) and hands plain data to render/.
"""
