"""Everything a person reads: diagnostics text, lint formats (json, github, sarif), summary tables, DOT.

Takes plain data and knows no stage (an import-linter contract keeps it so).
"""
