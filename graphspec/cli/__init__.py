"""The `graphspec` command line: the Typer app, one module per command group; the only place that sets exit codes."""
