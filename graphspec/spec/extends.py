"""`extends`: a spec written as a variant of another, merged right after the YAML is read.

Runs before `--set` overrides and before vars and blocks are expanded: its input is
the :class:`~graphspec.spec.source.Source` of one file; its output is one Source
whose data is the merge of the file over its bases, and whose position map points
every value at the file and line that holds it (``Span.file``), so a diagnostic
about a value written in a base is located in the base, with a note naming the
chain (``specs/base.yaml:12 is extended by specs/wide.yaml``). docs/variants.md
has the long version::

    extends: base.yaml            # or a list, merged in order: [base.yaml, wide.yaml]
    name: wide
    vars: {width: 128}            # mappings merge key by key
    compile:
      _replace_: true             # this mapping replaces the base's instead of merging into it
      optimizer: sgd
    nodes:
      dropout: _delete_           # remove a key (here a node) the base defines

Lists and scalars replace. Paths are relative to the file that names them,
must end in `.yaml` or `.yml`, and must stay inside the repository of the spec being read (the
folder holding `.git`), or under the spec's own folder outside a repository, wherever graphspec
runs (a spec cannot pull in any YAML file on the machine). Every value a later file replaces is kept in
``Source.history`` (where it was set, and the value), for `graphspec resolve --explain`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from graphspec.diagnostics import Diagnostic, Location, PathKey, Severity
from graphspec.spec import project
from graphspec.spec import source as source_mod
from graphspec.spec.catalog import did_you_mean
from graphspec.spec.source import Source, SourceError, Span

EXTENDS = "extends"
REPLACE = "_replace_"
DELETE = "_delete_"
MAX_FILES = 32  # files in one spec's tree of bases
SUFFIXES = (".yaml", ".yml")


def _fmt(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclasses.dataclass
class _Layer:
    """A file's data merged over its bases, with every span naming its file."""

    data: Any
    values: dict[PathKey, Span]
    keys: dict[PathKey, Span]
    history: dict[PathKey, tuple[tuple[Location, Any], ...]]


def _tagged(table: dict[PathKey, Span], file: str) -> dict[PathKey, Span]:
    return {p: s if s.file else Span(s.line, s.col, s.end_line, s.end_col, file) for p, s in table.items()}


def _under(path: PathKey, points: set[PathKey]) -> bool:
    return any(path[:i] in points for i in range(len(path) + 1))


class _Merger:
    def __init__(self, root: Source) -> None:
        self.root = root
        self.diags: list[Diagnostic] = []
        self.bases: dict[str, str] = {}
        self.extended_by: dict[str, str] = {}
        self.files = 1
        self._scope: tuple[list[str], str] | None = None

    @property
    def roots(self) -> list[str]:
        return self._where()[0]

    @property
    def scope(self) -> str:
        return self._where()[1]

    def _where(self) -> tuple[list[str], str]:
        """Where bases may be: a spec may only extend files inside its own repository (outside one: its own
        folder), wherever graphspec runs: a spec from elsewhere (a pull request, a download) cannot make lint
        print the lines of another YAML file on the machine. Found when a spec extends one (a walk up the
        folders: most specs extend nothing)."""
        if self._scope is None:
            folder = os.path.realpath(os.path.dirname(self.root.file) or ".")
            repository = project.repository_root(folder)
            roots = [str(repository) if repository is not None else folder]
            self._scope = (roots, f"the spec's repository ({roots[0]})" if repository is not None
                           else f"the spec's own folder ({folder}; the spec is in no repository)")
        return self._scope

    # -- diagnostics ----------------------------------------------------------------------
    def located(self, src: Source, path: PathKey, *, key: bool = False) -> Location:
        """Where `path` of `src` is, with the chain note when `src` is a base."""
        span = src.span(path, key=key)
        line = span.line if span else 0
        loc = Location(src.file, line, span.col if span else 0, span.end_line if span else 0,
                       span.end_col if span else 0)
        if src.file == self.root.file:
            return loc
        return source_mod.NotedLocation(loc.file, loc.line, loc.col, loc.end_line, loc.end_col,
                                        notes=(self.note(src.file, line),))

    def note(self, file: str, line: int = 0) -> str:
        probe = Source(self.root.file, "", None, {}, {}, extended_by=self.extended_by)
        return probe.chain_note(file, line)

    def error(self, code: str, message: str, src: Source, path: PathKey, *, key: bool = False,
              hint: str | None = None) -> None:
        self.diags.append(Diagnostic(code, Severity.ERROR, message, self.located(src, path, key=key), hint))

    # -- reading the bases -----------------------------------------------------------------
    def names(self, src: Source) -> list[tuple[str, PathKey]] | None:
        raw = src.data[EXTENDS]
        if isinstance(raw, str):
            items: list[tuple[Any, PathKey]] = [(raw, (EXTENDS,))]
        elif isinstance(raw, list) and len(raw) > MAX_FILES:
            # Each name would be read (or reported) in turn: a list of 90,000 names is one problem, not 90,000.
            self.error("GS130", f"`extends` lists {len(raw):,} files; a spec's tree of bases holds at most "
                       f"{MAX_FILES}", src, (EXTENDS,), key=True, hint="merge the bases into fewer files")
            return None
        elif isinstance(raw, list) and raw:
            items = [(v, (EXTENDS, i)) for i, v in enumerate(raw)]
        else:
            self.error("GS130", f"`extends` must be a file name or a list of file names; got {_fmt(raw)}", src,
                       (EXTENDS,), hint="for example `extends: base.yaml` (relative to this file)")
            return None
        out: list[tuple[str, PathKey]] = []
        for value, where in items:
            if not isinstance(value, str) or not value.strip():
                self.error("GS130", f"`extends` names files; got {_fmt(value)}", src, where)
                return None
            if not value.lower().endswith(SUFFIXES):
                self.error("GS130", f"`extends: {value}` is not a spec file: the name must end in .yaml or .yml",
                           src, where, hint="a spec extends other YAML specs only")
                return None
            out.append((value, where))
        return out

    def read(self, name: str, where: PathKey, src: Source, stack: tuple[tuple[str, str], ...]) -> Source | None:
        """The base `name` (relative to `src`), or None after recording why it cannot be read.

        `stack`: (real path, name as shown) of the files being merged, the spec's own first.
        """
        file = os.path.normpath(os.path.join(os.path.dirname(src.file), name)) if not os.path.isabs(name) else name
        real = os.path.realpath(file)
        reals = [r for r, _ in stack]
        if real in reals:
            chain = [shown for _, shown in stack[reals.index(real):]] + [file]
            self.error("GS131", f"`extends` cycle: {' -> '.join(chain)}", src, where,
                       hint="a spec cannot extend itself, directly or through its bases")
            return None
        if not any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in self.roots):
            self.error("GS130", f"`extends: {name}` is outside the folders a spec may extend from: {self.scope}",
                       src, where, hint="a base must be inside the spec's repository (the folder holding .git), "
                       "or beside the spec outside a repository")
            return None
        if self.files >= MAX_FILES:
            self.error("GS130", f"more than {MAX_FILES} files extend each other", src, where)
            return None
        self.files += 1
        self.extended_by.setdefault(file, src.file)
        try:
            base = source_mod.load(file, named=False)  # bounded above, by its real path
        except SourceError as exc:
            d = exc.diagnostic
            if d.code == "GS001":
                self.error("GS130", f"cannot read `{name}` ({file}) named by `extends`: {d.message}", src, where,
                           hint="paths in `extends` are relative to the file that names them")
            else:
                text = _text_of(file) if d.location.line else None
                if text is not None:
                    self.bases[file] = text
                self.diags.append(dataclasses.replace(
                    d, notes=d.notes + (self.note(file, d.location.line),)))
            return None
        self.bases[file] = base.text
        if not isinstance(base.data, dict):
            self.error("GS006", f"`{name}` is not a spec: a spec is a mapping", base, (),
                       hint="a base is a spec file (or part of one): `key: value` lines")
            return None
        return base

    # -- merging ---------------------------------------------------------------------------
    def layer(self, src: Source, stack: tuple[tuple[str, str], ...]) -> _Layer | None:
        """`src` merged over its bases; None if something failed (the diagnostics are recorded)."""
        data = src.data
        own = _Layer(data, _tagged(src.values, src.file), _tagged(src.keys, src.file), {})
        if not isinstance(data, dict) or EXTENDS not in data:
            if any(m in src.text for m in (REPLACE, DELETE)):
                self.stray_markers(src, data, ())
            return own
        names = self.names(src)
        if names is None:
            return None
        merged: _Layer | None = None
        ok = True
        for name, where in names:
            base = self.read(name, where, src, stack)
            layer = self.layer(base, stack + ((os.path.realpath(base.file), base.file),)) if base else None
            if layer is None or base is None:
                ok = False
                continue
            merged = layer if merged is None else self.merge(merged, layer, base)
        if not ok or merged is None:
            return None
        child = {k: v for k, v in data.items() if k != EXTENDS}
        own.values = {p: s for p, s in own.values.items() if p[:1] != (EXTENDS,)}
        own.keys = {p: s for p, s in own.keys.items() if p[:1] != (EXTENDS,)}
        return self.merge(merged, _Layer(child, own.values, own.keys, {}), src)

    def merge(self, base: _Layer, child: _Layer, src: Source) -> _Layer:
        """`child` (written in `src`) over `base`: data, position maps and history."""
        points: set[PathKey] = set()  # where the child's value replaces the base's
        dropped: set[PathKey] = set()  # the child's marker entries
        history = dict(base.history)

        def replaced(path: PathKey, old: Any) -> None:
            points.add(path)
            span = base.values.get(path)
            loc = (Location(span.file or src.file, span.line, span.col, span.end_line, span.end_col)
                   if span else Location(src.file))
            history[path] = base.history.get(path, ()) + ((loc, old),)

        def fresh(value: Any, path: PathKey) -> Any:
            """A value with nothing under it in the base: markers there are mistakes."""
            if isinstance(value, dict):
                out: dict[Any, Any] = {}
                for k, v in value.items():
                    if k == REPLACE:
                        dropped.add(path + (k,))
                        self.error("GS132", f"`{REPLACE}` here replaces nothing: the bases have no "
                                   f"`{'.'.join(map(str, path))}`", src, path + (k,), key=True,
                                   hint=self.near(base.data, path))
                    elif v == DELETE:
                        dropped.add(path + (k,))
                        self.error("GS132", f"`{k}: {DELETE}` deletes nothing: the bases have no "
                                   f"`{'.'.join(map(str, path + (k,)))}`", src, path + (k,), hint=self.near(
                                       base.data, path + (k,)))
                    else:
                        out[k] = fresh(v, path + (k,))
                return out
            if isinstance(value, list):
                return [fresh(v, path + (i,)) for i, v in enumerate(value)]
            return value

        def walk(old: Any, new: Any, path: PathKey) -> Any:
            if isinstance(new, dict) and REPLACE in new:
                dropped.add(path + (REPLACE,))
                if new[REPLACE] is not True:
                    self.error("GS132", f"`{REPLACE}` must be `true`; got {_fmt(new[REPLACE])}", src,
                               path + (REPLACE,), hint=f"leave `{REPLACE}` out to merge into the base's mapping")
                replaced(path, old)
                return fresh({k: v for k, v in new.items() if k != REPLACE}, path)
            if not (isinstance(old, dict) and isinstance(new, dict)):
                replaced(path, old)
                return fresh(new, path)
            out: dict[Any, Any] = {}
            for k, v in old.items():
                if k not in new:
                    out[k] = v
                elif new[k] == DELETE:
                    dropped.add(path + (k,))
                    replaced(path + (k,), v)
                else:
                    out[k] = walk(v, new[k], path + (k,))
            for k, v in new.items():
                if k not in old:
                    out.update(fresh({k: v}, path))  # `k: _delete_` of a key the base lacks: an error
            return out

        data = walk(base.data, child.data, ())
        values = {p: s for p, s in base.values.items() if not _under(p, points)}
        keys = {p: s for p, s in base.keys.items() if not _under(p, points)}
        values.update((p, s) for p, s in child.values.items() if not _under(p, dropped))
        keys.update((p, s) for p, s in child.keys.items() if not _under(p, dropped))
        return _Layer(data, values, keys, {p: h for p, h in history.items()})

    def near(self, data: Any, path: PathKey) -> str | None:
        """did-you-mean for a key the bases do not have."""
        cur = data
        for part in path[:-1]:
            if not isinstance(cur, dict) or part not in cur:
                return None
            cur = cur[part]
        if not isinstance(cur, dict):
            return None
        return did_you_mean(str(path[-1]), [str(k) for k in cur])

    def stray_markers(self, src: Source, value: Any, path: PathKey) -> None:
        """Merge markers in a file that extends nothing."""
        if isinstance(value, dict):
            for k, v in value.items():
                if k == REPLACE or v == DELETE:
                    what = f"`{REPLACE}`" if k == REPLACE else f"`{k}: {DELETE}`"
                    self.error("GS132", f"{what} only means something in a file that `extends` another", src,
                               path + (k,), key=True, hint="add `extends: BASE.yaml`, or remove it")
                else:
                    self.stray_markers(src, v, path + (k,))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.stray_markers(src, v, path + (i,))


def _text_of(file: str) -> str | None:
    try:
        with open(file, "rb") as fh:
            raw = fh.read(source_mod.MAX_BYTES + 1)
    except OSError:
        return None
    return None if len(raw) > source_mod.MAX_BYTES else raw.decode("utf-8", errors="replace").removeprefix("\ufeff")


def uses_extends(src: Source) -> bool:
    return isinstance(src.data, dict) and EXTENDS in src.data


def apply(src: Source) -> tuple[Source, list[Diagnostic]]:
    """`src` merged over the bases it `extends`: (the merged Source, diagnostics).

    A file without `extends` comes back unchanged (after a check for stray merge
    markers). On errors the returned Source is `src` itself and later stages should not run.
    """
    merger = _Merger(src)
    if not uses_extends(src):
        if any(m in src.text for m in (REPLACE, DELETE)):
            merger.stray_markers(src, src.data, ())
        return src, merger.diags
    layer = merger.layer(src, ((os.path.realpath(src.file), src.file),))
    if layer is not None and uses_extends(src) and len(layer.values) > source_mod.MAX_NODES:
        merger.error("GS003", f"the spec and its bases have more than {source_mod.MAX_NODES:,} values", src,
                     (EXTENDS,), key=True)
    if layer is None or merger.diags:
        # Unmerged, but with the bases' text: the diagnostics may be located there.
        return dataclasses.replace(src, bases=merger.bases, extended_by=merger.extended_by), merger.diags
    merged = dataclasses.replace(src, data=layer.data, values=layer.values, keys=layer.keys,
                                 bases=merger.bases, extended_by=merger.extended_by, history=layer.history)
    return merged, []


def check_sets(src: Source) -> None:
    """Raise SourceError when a `--set` names `extends`: bases are merged before overrides apply."""
    for path in src.overrides:
        if path[:1] == (EXTENDS,):
            raise SourceError(Diagnostic("GS600", Severity.ERROR, "--set cannot change `extends`: the bases are "
                                         "merged before overrides apply", src.location(path),
                                         "write a variant file with its own `extends`, or set the values "
                                         "themselves"))


def load(path: str) -> Source:
    """Read a spec file and merge it over its bases; raise SourceError with the first problem."""
    merged, diags = apply(source_mod.load(path))
    if diags:
        raise SourceError(diags[0])
    return merged


__all__ = ["apply", "check_sets", "load", "uses_extends", "EXTENDS", "REPLACE", "DELETE"]
