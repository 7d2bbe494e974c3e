"""Pre-flight: what a command can check before a backend is imported, so that a wrong file costs a second,
not a TensorFlow (or JAX) start-up.

Each check here is one a later stage makes again on the real thing; the pre-flight makes it on what can be
read without decoding and without Keras:

* the data against the model (GS411): an `.npz` source's array names, shapes and dtypes from its zip
  directory and `.npy` headers, a CSV source's columns from its header line
  (:func:`graphspec.run.sources.describe_arrays`), and a streamed source's files, classes and columns
  (:mod:`graphspec.run.sources.lint`, the Parquet schema only), against the model's inputs and outputs as
  the static analysis knows them. The arrays stand in for the data (:func:`graphspec.run.sources.arrays.stand_ins`)
  and go through the very mapping, transforms and checks of :mod:`graphspec.run.data`, one sample each;
* `predict --input`: an `.npz` where the model takes arrays (its names, shapes and dtypes, from the
  headers), files of the right kind where it takes images or text;
* the weights a command loads: present, and a `.keras` archive that passes the zip checks (GS416);
* then the data itself, where the source is read whole (`.npz`, CSV, scikit-learn): :func:`prepare` reads,
  maps, transforms, splits and checks it, values included (GS417: NaN, class ids; a CSV field over 128 KiB),
  with :func:`graphspec.run.data.prepare` against the static inputs and outputs, after the memory gate
  (GS502). That data is what trains (or is evaluated): the built model takes it through :func:`adopt`,
  checked again only where Keras sees a port's shape or dtype otherwise, so it is read once. `predict`'s
  `--input` arrays likewise (:func:`predict_input` returns them).

An input or output whose shape the static analysis does not know (a plugin layer without a shape rule)
is left to the checks after the build, and so is the data of such a model: it is read after the build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphspec.diagnostics import Diagnostic, Location, Severity
from graphspec.errors import SpecError, UsageError
from graphspec.run import data as data_mod
from graphspec.run import sources
from graphspec.run.sources import Arrays
from graphspec.spec.schema_run import CsvSource, NpzSource, SklearnSource

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
TEXT_SUFFIXES = (".txt",)
IN_MEMORY = (NpzSource, CsvSource, SklearnSource)  # sources read whole: prepared before the backend


def static_io(checked: Any, model_name: str) -> data_mod.ModelIO:
    """The model's inputs and outputs as :func:`graphspec.run.data.model_io` names them, shaped by the static
    analysis; a port whose shape it does not know is left out."""
    from graphspec.analysis.graph import effective_compile, output_names
    from graphspec.analysis.run_checks import input_names

    graph = checked.graph
    model = graph.models[model_name]
    info = checked.analysis.models.get(model_name) if checked.analysis is not None else None
    ins = []
    nodes = checked.analysis.nodes if checked.analysis is not None else {}
    for name in input_names(model):
        written = checked.spec.inputs.get(name)  # `x: [4]`, or `x: {shape: [4], dtype: int32}`
        node = nodes.get(name)
        shape = node.outputs[0] if node is not None and node.outputs and len(node.outputs) == 1 else None
        if written is None or shape is None or getattr(written, "sparse", False) or not _known(shape):
            continue
        ins.append(data_mod.Port(name, name, tuple(shape), str(getattr(written, "dtype", "float32"))))
    settings, _ = effective_compile(graph, model)
    outs_names = output_names(model) or []
    losses = data_mod.losses_by_output(settings.loss if settings is not None else None, outs_names)
    outs = []
    for name in outs_names:
        shape = info.output_shapes.get(name) if info is not None else None
        if shape is not None and _known(shape):
            outs.append(data_mod.Port(name, name, tuple(shape), "float32", losses.get(name)))
    return data_mod.ModelIO(ins, outs)


def complete(checked: Any, model_name: str, io: data_mod.ModelIO) -> bool:
    """Whether `io` (from :func:`static_io`) has every input and output of the model: only then is the data
    prepared before the build."""
    from graphspec.analysis.graph import output_names
    from graphspec.analysis.run_checks import input_names

    model = checked.graph.models[model_name]
    outs = output_names(model)
    return outs is not None and [p.name for p in io.inputs] == input_names(model) and [
        p.name for p in io.outputs] == outs


def prepare(checked: Any, model_name: str, base_dir: Path, roots: list[Path], *, seed: int,
            locate: Any = None) -> data_mod.Data | None:
    """An in-memory source's data (an `.npz` or CSV file, scikit-learn) read, mapped, transformed, split and
    checked (:func:`graphspec.run.data.prepare`: every value, GS417 included) against the model's inputs and
    outputs as the static analysis knows them, before a backend is imported: the data that trains, read once
    (:func:`adopt` hands it to the built model). None where it is prepared after the build, as before: another
    source, or a port whose shape or name the static analysis does not know."""
    spec = checked.spec
    if spec is None or spec.data is None or checked.graph is None or not isinstance(
            spec.data.source, IN_MEMORY):
        return None
    io = static_io(checked, model_name)
    if not complete(checked, model_name, io):
        return None
    return data_mod.prepare(spec.data, io, base_dir=base_dir, seed=seed, graph=checked.graph,
                            locate=locate or _locate(checked), roots=roots)


def adopt(prepared: data_mod.Data, io: data_mod.ModelIO, spec_data: Any, locate: Any) -> data_mod.Data | None:
    """The data :func:`prepare` made, for the built model's inputs and outputs `io` (no file is read again):
    checked again where Keras sees a port otherwise than the static analysis (a shape, a dtype); None where its
    own name for a port could pick other arrays or transforms (the caller prepares the data anew)."""
    before = prepared.io
    pairs = list(zip(before.inputs, io.inputs)) + list(zip(before.outputs, io.outputs))
    if len(before.inputs) != len(io.inputs) or len(before.outputs) != len(io.outputs) or any(
            a.name != b.name or not _same_pick(b, prepared, spec_data) for a, b in pairs):
        return None
    if any((a.shape, a.dtype, a.loss) != (b.shape, b.dtype, b.loss) for a, b in pairs):
        try:
            for name, split in (("training", prepared.train), ("validation", prepared.validation),
                                ("test", prepared.test)):
                if isinstance(split, data_mod.Split):
                    data_mod._check_split(split, io, name, spec_data)
        except sources.Problem as p:
            raise p.located(locate) from None
    prepared.io = io
    return prepared


def _same_pick(port: data_mod.Port, prepared: data_mod.Data, spec_data: Any) -> bool:
    """Whether `port`'s Keras name (the output of a shared layer has its layer's) picks the arrays and
    transforms its spec name picked: it is named nowhere, and the port's array was the one of its own name."""
    if port.keras_name == port.name:
        return True
    mapping = {**(spec_data.inputs or {}), **(spec_data.outputs or {})}
    if port.keras_name in mapping or port.keras_name in spec_data.transforms:
        return False
    splits = [s for s in (prepared.train, prepared.validation, prepared.test) if isinstance(s, data_mod.Split)]
    return port.name in mapping or all(s.origins.get(port.name, "").endswith(f"array `{port.name}`") for s in splits)


def _known(shape: Any) -> bool:
    return isinstance(shape, tuple) and all(d is None or isinstance(d, int) for d in shape)


def _locate(checked: Any) -> Any:
    def locate(path: tuple[Any, ...]) -> Location:
        assert checked.source is not None
        found: Location = checked.source.location(path, key=True)
        return found

    return locate


def data(checked: Any, model_name: str, base_dir: Path, roots: list[Path], *, splits: tuple[str, ...] | None = None,
         locate: Any = None, shapes: bool = True) -> None:
    """Check the spec's data against model `model_name` without loading it; raises a located DataError (GS411,
    GS416, GS440, GS443, ...). `splits`: only these (evaluate reads the test set). `shapes`: also the shapes and
    dtypes against the model (a sweep's base configuration is not every trial's model: there the files, their
    names and lengths only)."""
    spec = checked.spec
    if spec is None or spec.data is None or checked.graph is None:
        return
    locate = locate or _locate(checked)
    if sources.is_streamed(spec.data):
        from graphspec.run.sources import lint

        if not shapes:
            sources.describe(spec.data, base_dir, roots, locate)
            return

        found = [d for d in lint.check(checked, base=base_dir, roots=roots, packages=True) if d.is_error]
        if found:
            raise sources.DataError(found)
        return
    if not isinstance(spec.data.source, (NpzSource, CsvSource)):
        return
    io = static_io(checked, model_name)
    described = sources.describe_arrays(spec.data, base_dir, roots, locate)
    try:
        for split, (arrays, origin) in described.items():
            if splits is not None and split not in splits:
                continue
            _check_split(arrays, origin, io, spec.data, split, exact_rows=isinstance(spec.data.source, NpzSource),
                         shapes=shapes)
    except sources.Problem as p:
        raise p.located(locate) from None


def _check_split(arrays: sources.Arrays, origin: sources.Origin, io: data_mod.ModelIO, spec_data: Any, split: str,
                 *, exact_rows: bool, shapes: bool = True) -> None:
    """One split's stand-in arrays through the mapping, transforms and checks of training (one sample)."""
    mapped = data_mod._map_split(arrays, io, spec_data, split, origin)
    if exact_rows and split == "train" and len(mapped) == 0:  # (a CSV's rows are counted by its lines)
        raise sources.error("the training set is empty", ("data",))
    if not shapes:
        return
    first = mapped.take(slice(0, 1))
    name = {"train": "training"}.get(split, split)
    scale = max(1, len(mapped) // max(1, len(first)))  # the one-hot memory is counted for every row
    data_mod._check_split(data_mod._transform_split(first, io, spec_data, scale=scale), io, name, spec_data)


def has_test_set(spec_data: Any) -> bool:
    """Whether evaluate will find a test set: a `test` file in the source, `test_split`, or a source that has one."""
    src = spec_data.source
    if isinstance(src, (NpzSource, CsvSource)):
        return src.test is not None or spec_data.test_split > 0
    return True


def predict_input(checked: Any, model_name: str, inputs: Path, *, transforms: bool = True) -> Arrays | None:
    """Check `predict --input` against the model before it is built: raises UsageError or a located SpecError.

    An `.npz` of arrays is then read, and its values checked too (GS417), where the static analysis knows every
    input of the model: its arrays are returned, for predict to use (None: predict reads the file itself)."""
    from graphspec.run import predict_files

    spec_data = checked.spec.data if checked.spec is not None else None
    if spec_data is not None and predict_files.is_files_input(inputs, spec_data):  # as predict_files reads them
        from graphspec.run.sources import images, text
        from graphspec.spec.schema_run import ImagesSource

        src = spec_data.source
        is_images = isinstance(src, ImagesSource)
        files = predict_files.list_inputs(inputs, images.SUFFIXES if is_images else text.SUFFIXES, src)
        strict = src.model_copy(update={"on_error": "error"})
        try:
            (images if is_images else text).check_files(files, strict, ("inputs",))
        except sources.Problem as p:
            raise UsageError(p.message) from None
        return None
    if not inputs.is_file():
        raise UsageError(f"{inputs}: no such file" if not inputs.exists() else f"{inputs}: not a file")
    where = Location(str(inputs))
    suffix = inputs.suffix.lower()
    if suffix in IMAGE_SUFFIXES + TEXT_SUFFIXES or suffix in (".csv", ".npy"):
        what = "images" if suffix in IMAGE_SUFFIXES else "text files" if suffix in TEXT_SUFFIXES else f"{suffix} files"
        raise SpecError([Diagnostic(
            "GS411", Severity.ERROR, f"--input is one of {what}, but model `{model_name}` is fed arrays "
            f"(its data source is {_kind(spec_data)}): predict reads an .npz file of arrays named like its inputs",
            where, "save the inputs with numpy.savez(FILE, " + ", ".join(
                f"{p.name}=..." for p in static_io(checked, model_name).inputs) + ")")])
    origin = sources.Origin(str(inputs))
    try:
        arrays = sources.arrays.stand_ins(sources.arrays.npz_headers(inputs, origin, ("inputs",)))
    except sources.Problem as p:
        raise p.located(lambda _path: where) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{inputs}: cannot read an .npz file ({exc})") from None
    io = static_io(checked, model_name)
    locate = _locate(checked)
    first = {k: v[:1] for k, v in arrays.items()}  # one sample: what the checks need of the shapes
    try:
        data_mod._inputs_from_arrays(first, io, spec_data, transforms)
    except sources.Problem as p:
        if p.path == ("inputs",):  # a name that is missing: said with the file's own shapes (no array is read)
            try:
                data_mod._inputs_from_arrays(arrays, io, spec_data, False)
            except sources.Problem as named:
                p = named
        raise p.located(lambda path: where if path and path[0] == "inputs" else locate(path)) from None
    from graphspec.analysis.run_checks import input_names

    if [p.name for p in io.inputs] != input_names(checked.graph.models[model_name]):
        return None
    read = read_inputs(inputs)
    try:
        data_mod._inputs_from_arrays(read, io, spec_data, transforms)  # the values: NaN or infinity (GS417)
    except sources.Problem as p:
        raise p.located(lambda path: where if path and path[0] == "inputs" else locate(path)) from None
    return read


def read_inputs(inputs: Path) -> Arrays:
    """The arrays of `predict --input`'s .npz file (given on the command line: it may be anywhere), once its
    zip directory and array headers pass the checks; raises UsageError or a located SpecError."""
    try:
        if not inputs.is_file():
            raise UsageError(f"{inputs}: no such file" if not inputs.exists() else f"{inputs}: not a file")
        return sources.read_npz(inputs, sources.Origin(str(inputs)), ("inputs",))
    except sources.Problem as p:
        raise p.located(lambda _path: Location(str(inputs))) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{inputs}: cannot read an .npz file ({exc})") from None


def _kind(spec_data: Any) -> str:
    if spec_data is None:
        return "not given"
    return f"`{getattr(spec_data.source, 'kind', type(spec_data.source).__name__)}`"


def weights(path: Path, run_dir: Path | None = None) -> None:
    """The weights a command is about to load: present, a file, and (a `.keras` archive) sound (GS416)."""
    from graphspec.build import archives

    if not path.exists():
        if run_dir is not None:
            raise UsageError(f"{run_dir} has no weights ({path.name} is missing): the run has not completed an "
                             f"epoch; continue it with `graphspec train --resume --run-dir {run_dir}`, or pass "
                             "--weights PATH")
        raise UsageError(f"{path}: no such weights file")
    if not path.is_file():
        raise UsageError(f"{path}: not a weights file")
    if path.suffix == ".keras":
        try:
            archives.check_zip(path, json_members=archives.KERAS_JSON)
        except archives.ArchiveProblem as exc:
            raise SpecError([Diagnostic("GS416", Severity.ERROR, f"cannot load weights: {exc}",
                                        Location(str(path)))]) from None
