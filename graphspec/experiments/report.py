"""`graphspec sweep DIR --report -o report.html` (or .png): what a person would rather look at than read.

Optuna's visualisation module draws the optimisation history, the parameter importances and a
parallel-coordinates plot of the study. HTML uses the plotly versions, in one self-contained page
(plotly.js inlined: it opens offline); PNG uses the matplotlib versions, stacked in one image.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from graphspec.errors import UsageError
from graphspec.run import artifacts


def metric_name(study: Any) -> str:
    """The objective's name for the axes: the metric the sweep optimises, as the study records it."""
    names = study.metric_names
    return str(names[0]) if names else "objective"


def _plots(study: Any, module: Any) -> list[tuple[str, Any]]:
    """(title, figure) for each plot the study has enough trials for, the objective named on its axes."""
    from optuna.trial import TrialState

    target = metric_name(study)
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    out: list[tuple[str, Any]] = [("Optimisation history",
                                   module.plot_optimization_history(study, target_name=target))]
    varying = {k for t in complete for k in t.params if len({repr(u.params.get(k)) for u in complete}) > 1}
    if len(complete) >= 2 and varying:
        out.append(("Parameter importances", module.plot_param_importances(study, target_name=target)))
    if complete and study.get_trials(deepcopy=False)[0].params:
        out.append(("Parallel coordinates", module.plot_parallel_coordinate(study, target_name=target)))
    return out


def write(study: Any, output: Path, *, title: str) -> list[str]:
    """Write the report; the titles of the plots it holds."""
    import warnings

    suffix = output.suffix.lower()
    if suffix not in (".html", ".png"):
        raise UsageError(f"-o {output}: the report is an .html or a .png file")
    if not study.get_trials(deepcopy=False):
        raise UsageError(f"the study `{study.study_name}` has no trials yet: run the sweep first")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks the matplotlib plots experimental
        if suffix == ".html":
            return _html(study, output, title)
        return _png(study, output)


def _html(study: Any, output: Path, title: str) -> list[str]:
    try:
        import optuna.visualization as vis

        if not vis.is_available():
            raise ImportError("plotly")
    except ImportError:
        raise UsageError("an HTML report needs plotly: pip install 'keras-graphspec[experiments]', or write a .png "
                         "(matplotlib)") from None
    plots = _plots(study, vis)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for i, (name, fig) in enumerate(plots):
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    parts.append("</body></html>")
    artifacts.atomic_write_text(output, "\n".join(parts))
    return [name for name, _ in plots]


def _png(study: Any, output: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import optuna.visualization.matplotlib as vis
    except ImportError:
        raise UsageError("a PNG report needs matplotlib: pip install 'keras-graphspec[experiments]'") from None
    plots = _plots(study, vis)
    images = []
    for _, ax in plots:
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        buf.seek(0)
        images.append(plt.imread(buf, format="png"))
    height = sum(img.shape[0] for img in images)
    width = max(img.shape[1] for img in images)
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    top = 1.0
    for img in images:
        h = img.shape[0] / height
        ax = fig.add_axes((0.0, top - h, img.shape[1] / width, h))
        ax.imshow(img)
        ax.axis("off")
        top -= h
    with artifacts.atomic_path(output, ".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return [name for name, _ in plots]
