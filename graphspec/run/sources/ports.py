"""Which field of a streamed source feeds each model input and output, and the checks only a stream needs
(its classes against the output, string fields against string inputs)."""

from __future__ import annotations

from typing import Any

from graphspec.run.sources.arrays import error


def input_for(data: Any, io: Any, field: str) -> Any:
    """The model input that reads `field` (mapped in `data.inputs`, else the only input), or None."""
    mapping = data.inputs or {}
    mapped = [p for p in io.inputs if mapping.get(p.name, mapping.get(p.keras_name)) == field]
    return mapped[0] if mapped else io.inputs[0] if len(io.inputs) == 1 and not mapping else None


def stream_ports(data: Any, io: Any, reader: Any) -> dict[str, str]:
    """Model input/output name -> the reader's field it reads (`image`, `text`, `label`, a column, ...)."""
    fields = tuple(reader.fields)
    out: dict[str, str] = {}
    for ports, mapping, section, default in ((io.inputs, data.inputs or {}, "inputs", reader.default_input),
                                             (io.outputs, data.outputs or {}, "outputs", reader.default_output)):
        for port in ports:
            want = mapping.get(port.name, mapping.get(port.keras_name))
            if isinstance(want, str):
                out[port.name] = want
            elif port.name in fields:
                out[port.name] = port.name
            elif len(ports) == 1 and default is not None:
                out[port.name] = default
            else:
                raise error(f"nothing feeds model {section[:-1]} `{port.name}`: the source has "
                            f"{', '.join(f'`{f}`' for f in fields)}", ("data", section) if mapping else ("data",),
                            f"map it: `data.{section}: {{{port.name}: FIELD}}`")
            if out[port.name] not in fields:
                raise error(f"`data.{section}.{port.name}` names `{out[port.name]}`, which the source does not "
                            f"have: it has {', '.join(f'`{f}`' for f in fields)}", ("data", section, port.name))
    return out


def check_classes(classes: int, port: Any, kind: str, where: tuple[Any, ...]) -> None:
    """GS411 unless the output fits the source's number of classes under its loss."""
    units = port.shape[-1] if port.shape else None
    if kind == "sparse" and units is not None and units not in (1, classes):
        raise error(f"the data has {classes} classes, but the model's output `{port.name}` has {units} units "
                    f"(its loss takes class ids 0..{units - 1})", where,
                    f"make the output Dense({classes}), or list the classes to use in `classes:`")
    if kind == "binary" and units == 1 and classes != 2:
        raise error(f"the data has {classes} classes, but the model's output `{port.name}` has 1 unit (binary)",
                    where, f"use Dense({classes}) with a sparse categorical cross-entropy")


def check_string_input(port: Any, field: str, backend_name: str) -> None:
    """GS411 unless a string field feeds a string input of one value per sample (GS410 off TensorFlow)."""
    if backend_name != "tensorflow":
        raise error(f"the source's `{field}` is text, which a Keras model takes on TensorFlow only (on "
                    f"{backend_name or 'this backend'} its inputs are numbers)", ("data", "source"),
                    "train with --backend tensorflow", code="GS410")
    if port.dtype != "string":
        raise error(f"the source's `{field}` is text, but the model's input `{port.name}` takes {port.dtype}",
                    ("inputs", port.name), "make the input `dtype: string` (a TextVectorization or StringLookup "
                    "node turns it into numbers)")
    if tuple(port.shape) not in ((), (1,)):
        raise error(f"the source's `{field}` is one string per sample, but the model's input `{port.name}` has "
                    f"shape {list(port.shape)}", ("inputs", port.name), "use `shape: [1]` (or `[]`)")
