"""Exceptions raised at the boundary of graphspec's stages.

Stages collect :class:`~graphspec.diagnostics.Diagnostic` objects; when a stage
cannot go on it raises :class:`SpecError` carrying all of them, so the caller
sees every problem at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from graphspec.diagnostics import Diagnostic


# The exit status of a crash of graphspec itself (GS900): a bug, told apart from a usage error (2) by scripts and CI.
EXIT_INTERNAL = 3


class GraphSpecError(Exception):
    """Base class of every error graphspec raises on purpose."""


class SpecError(GraphSpecError):
    """The spec has errors; ``diagnostics`` holds all of them, sorted."""

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: dict[str, str] | None = None) -> None:
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        # file -> text, so that a renderer can show the offending source lines
        self.sources = dict(sources or {})
        first = self.diagnostics[0] if self.diagnostics else None
        text = f"{first.location}: {first.code}: {first.message}" if first else "invalid spec"
        more = len(self.diagnostics) - 1
        super().__init__(text + (f" (and {more} more)" if more > 0 else ""))


class UsageError(GraphSpecError):
    """The command line asks for something impossible (exit code 2)."""
