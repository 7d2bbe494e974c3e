"""Which files `graphspec lint PATH...` checks, and the repository root SARIF paths are relative to.

A file named on the command line is always linted. Folders (searched recursively)
and globs *discover* files, and discovery skips what is not a spec: hidden and
tool folders, run folders (`spec.yaml` beside `state.json`: a copy of a spec as
trained) and sweep folders (whose `trial-N/` folders are run folders), YAML files
without a top-level `graphspec:` or `extends:` key (CI workflows, `.pre-commit-config.yaml`),
and paths matching `exclude` in `[tool.graphspec.lint]`. What was skipped is
counted, so the summary can say so.

Nothing here imports more than the standard library.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

SPEC_SUFFIXES = (".yaml", ".yml")
STDIN = "-"
# Folders never searched when walking a directory (they hold other tools' YAML).
SKIP_DIRS = {"node_modules", "__pycache__", "site-packages"}
# A run folder, as graphspec.run.folders writes it: the spec as trained beside the run's state.
RUN_SPEC, RUN_STATE = "spec.yaml", "state.json"
_TRIAL = re.compile(r"^trial-\d+$")
# A spec has a top-level `graphspec:` key, or is a variant with a top-level `extends:` key (block style,
# or a one-line flow mapping).
_SPEC_KEY = re.compile(rb"(?m)(?:^(?:\xef\xbb\xbf)?|[{,][ \t]*)[\"']?(?:graphspec|extends)[\"']?[ \t]*:")
_HEAD_BYTES = 1024 * 1024 + 1  # as much as lint would read of the file anyway

# Why something was skipped: reason -> (singular, plural) for the summary line.
NOT_A_SPEC = "not a spec"
RUN_FOLDER = "run folder"
SWEEP_FOLDER = "sweep folder"
EXCLUDED = "excluded"
REASONS = {
    NOT_A_SPEC: ("YAML file without a `graphspec:` or `extends:` key",
                 "YAML files without a `graphspec:` or `extends:` key"),
    RUN_FOLDER: ("run folder", "run folders"),
    SWEEP_FOLDER: ("sweep folder", "sweep folders"),
    EXCLUDED: ("path excluded by [tool.graphspec.lint]", "paths excluded by [tool.graphspec.lint]"),
}


class PathError(Exception):
    """A path on the command line names nothing (a usage error)."""


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A file or folder that discovery passed over, and why."""

    path: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


def skipped_text(skipped: Iterable[Skipped]) -> str:
    """`skipped 3 YAML files without a `graphspec:` key and 1 run folder`, or '' when nothing was."""
    counts: dict[str, int] = {}
    for s in skipped:
        counts[s.reason] = counts.get(s.reason, 0) + 1
    parts = [f"{n} {REASONS[r][0 if n == 1 else 1]}" for r, n in counts.items() if r in REASONS]
    if not parts:
        return ""
    return "skipped " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])


def is_run_folder(folder: Path) -> bool:
    return (folder / RUN_SPEC).is_file() and (folder / RUN_STATE).is_file()


def is_sweep_folder(folder: Path, names: Iterable[str]) -> bool:
    return any(_TRIAL.match(n) and is_run_folder(folder / n) for n in names)


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir()]
    except OSError:
        return []


def has_spec_key(path: Path) -> bool:
    """Whether a file has a top-level `graphspec:` or `extends:` key (a cheap look at its bytes, not a parse)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError:
        return True  # unreadable: let lint say why
    return _SPEC_KEY.search(head) is not None


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _glob_root(pattern: str) -> Path:
    """The folder a glob searches under: its longest prefix without wildcards."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if _is_glob(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _escapes(path: Path, root: Path) -> bool:
    """A symbolic link found while searching `root` that points outside it."""
    if not path.is_symlink():
        return False
    try:
        return not Path(os.path.realpath(path)).is_relative_to(Path(os.path.realpath(root)))
    except (OSError, ValueError):
        return True


Excluded = Callable[[Path], bool]


class _Discovery:
    """Collects files in order, without repeats, noting the refused and the skipped."""

    def __init__(self, refused: dict[str, str] | None, skipped: list[Skipped] | None,
                 excluded: Excluded | None, hook: bool = False) -> None:
        self.hook = hook  # pre-commit: a file named that is not a spec is skipped too
        self.out: dict[str, None] = {}
        self.refused = refused
        self.skipped = skipped if skipped is not None else []
        self.excluded = excluded or (lambda _p: False)

    def skip(self, path: Path, reason: str) -> None:
        self.skipped.append(Skipped(os.path.normpath(str(path)), reason))

    def add(self, p: Path, root: Path, *, discovered: bool) -> None:
        name = os.path.normpath(str(p))
        if name in self.out:
            return
        escapes = _escapes(p, root)
        if discovered and not escapes:  # never read a file that is refused (it could be a secret)
            if self.excluded(p):
                return self.skip(p, EXCLUDED)
            folder = p.parent
            kind = None if folder == root else RUN_FOLDER if is_run_folder(folder) else SWEEP_FOLDER if (
                is_sweep_folder(folder, (d.name for d in _subfolders(folder)))) else None
            if kind is not None:  # found by a glob: skipped as walking would skip its folder
                if not any(s.path == os.path.normpath(str(folder)) for s in self.skipped):
                    self.skip(folder, kind)
                return None
            if not has_spec_key(p):
                return self.skip(p, NOT_A_SPEC)
        elif self.hook and not escapes and not has_spec_key(p):
            return self.skip(p, NOT_A_SPEC)
        self.out[name] = None
        if escapes and self.refused is not None:
            where = "the working folder" if os.path.normpath(str(root)) == "." else f"{os.path.normpath(str(root))}/"
            self.refused[name] = f"symbolic link to a file outside {where}: not read"

    def walk(self, folder: Path) -> None:
        """Spec files under a folder, recursively, sorted; hidden, tool, run and sweep folders skipped."""
        for root, dirs, files in os.walk(folder, followlinks=False):
            here = Path(root)
            if here != folder:  # a folder named on the command line is searched, whatever it is
                kind = RUN_FOLDER if is_run_folder(here) else SWEEP_FOLDER if is_sweep_folder(here, dirs) else None
                if kind is not None:
                    self.skip(here, kind)
                    dirs[:] = []
                    continue
            kept = []
            for d in sorted(dirs):
                if d.startswith(".") or d in SKIP_DIRS:
                    continue
                if self.excluded(here / d):
                    self.skip(here / d, EXCLUDED)
                    continue
                kept.append(d)
            dirs[:] = kept
            for name in sorted(files):
                if name.endswith(SPEC_SUFFIXES) and not name.startswith("."):
                    self.add(here / name, folder, discovered=True)


def expand_paths(paths: Iterable[str], refused: dict[str, str] | None = None, *,
                 skipped: list[Skipped] | None = None, excluded: Excluded | None = None,
                 hook: bool = False) -> list[str]:
    """Files as given, folders recursively (`*.yaml`, `*.yml`), globs; in order, without repeats.

    A symbolic link found by searching a folder or a glob that points outside
    that folder, or a named link that points outside the working folder, is
    listed but not to be read (a spec in a pull request could link to a
    secret, whose lines would be shown): `refused` maps it to the reason.
    Discovered files that are not specs are left out and noted in `skipped`; with `hook`
    (pre-commit, which names every staged YAML file), so are named ones.
    Raises :class:`PathError` for a path that does not exist or a glob that matches nothing.
    """
    found = _Discovery(refused, skipped, excluded, hook)
    for raw in paths:
        if raw == STDIN:
            found.out.setdefault(STDIN, None)
            continue
        p = Path(raw)
        if p.is_dir():
            found.walk(p)
        elif p.exists():
            found.add(p, Path("."), discovered=False)  # even a named link may not leave the working folder
        elif _is_glob(raw):
            matches = sorted(glob.glob(raw, recursive=True))
            if not matches:
                raise PathError(f"no files match {raw!r}")
            root = _glob_root(raw)
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    found.walk(mp)
                elif mp.name.endswith(SPEC_SUFFIXES) or not _is_glob(Path(raw).name):
                    found.add(mp, root, discovered=True)
        else:
            raise PathError(f"{raw}: no such file or directory")
    return list(found.out)


def repository_root(start: Path) -> Path | None:
    """The top level of the git work tree holding `start` (a `.git` folder, or file for worktrees)."""
    here = start if start.is_dir() else start.parent
    for folder in [here, *here.parents]:
        if (folder / ".git").exists():
            return folder
    return None


def sarif_root(files: Iterable[str], given: str | None, cwd: Path) -> Path | None:
    """What SARIF paths are relative to: `--root`, else the repository of the working folder, else
    the repository of the first file in one; None outside any repository."""
    if given is not None:
        return Path(os.path.abspath(given))
    found = repository_root(cwd)
    if found is not None:
        return found
    for f in files:
        if f != STDIN:
            found = repository_root(Path(os.path.abspath(f)))
            if found is not None:
                return found
    return None
