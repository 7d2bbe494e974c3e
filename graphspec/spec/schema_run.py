"""The `data` and `train` sections of a spec: what `graphspec train` reads.

Strict pydantic models (:class:`DataSpec`, :class:`TrainSpec`) that
:mod:`graphspec.spec.schema` uses for the two fields, so that type errors come out
of the parse stage as located GS1xx diagnostics. The checks of these sections
against the model they train are in :mod:`graphspec.analysis.run_checks`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, StringConstraints,
                      Tag, WithJsonSchema, model_validator)

# Kept here (not imported from graphspec.spec.schema, which imports this module).
_Name = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", max_length=128),
    Field(description="An identifier: letters, digits, `_` and `-`, not starting with a digit."),
]
_Count = Annotated[int, Field(ge=1, le=2**31 - 1)]
_Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
NumericDType = Literal[
    "float16", "bfloat16", "float32", "float64",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
]
Mode = Literal["auto", "min", "max"]
_DURATION = r"^\s*(\d+(?:\.\d*)?)\s*(s|m|min|h)\s*$"


def _seconds(value: Any) -> Any:
    """A duration as seconds: a number, or a string such as `90s`, `5m`, `1h`."""
    if isinstance(value, str):
        found = re.match(_DURATION, value)
        if found is None:
            raise ValueError(f"{value!r} is not a duration: write a number of seconds or e.g. `90s`, `5m`, `1h`")
        return float(found[1]) * {"s": 1, "m": 60, "min": 60, "h": 3600}[found[2]]
    return value


_Seconds = Annotated[
    float, Field(ge=0), BeforeValidator(_seconds),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": _DURATION}]}),
]

# Datasets each loader knows. keras: keras.datasets.<name>.load_data(); sklearn: the
# bundled (offline) sklearn.datasets.load_<name>().
KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "imdb", "reuters", "boston_housing",
                  "california_housing")
SKLEARN_DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes", "linnerud")
SEQUENCE_DATASETS = ("imdb", "reuters")


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


# -- sources ---------------------------------------------------------------------------------
class KerasSource(_Strict):
    """A `keras.datasets` loader (downloads once, then reads its cache under `~/.keras/datasets`)."""

    kind: Literal["keras"] = Field(description="`keras`: a `keras.datasets` loader.")
    name: str = Field(description=f"The dataset: {', '.join(KERAS_DATASETS)}. Arrays: `x`, `y`.")
    num_words: _Count | None = Field(None, description="imdb/reuters: keep the most frequent words only.")
    maxlen: _Count | None = Field(
        None, description="imdb/reuters: pad or truncate every sequence to this length (needed to batch them)."
    )


class SklearnSource(_Strict):
    """A dataset bundled with scikit-learn: works offline."""

    kind: Literal["sklearn"] = Field(description="`sklearn`: a bundled scikit-learn dataset.")
    name: str = Field(description=f"The dataset: {', '.join(SKLEARN_DATASETS)}. Arrays: `x`, `y`.")


class NpzSource(_Strict):
    """NumPy `.npz` files; their arrays are mapped to the model by `data.inputs` / `data.outputs`."""

    kind: Literal["npz"] = Field(description="`npz`: arrays from `.npz` files.")
    train: str = Field(description="The training file (relative to the spec file).")
    validation: str | None = Field(None, description="A validation file with the same arrays.")
    test: str | None = Field(None, description="A test file with the same arrays.")


class CsvSource(_Strict):
    """CSV files of numbers; columns are mapped to the model by `data.inputs` / `data.outputs`."""

    kind: Literal["csv"] = Field(description="`csv`: columns of CSV files.")
    train: str = Field(description="The training file (relative to the spec file).")
    validation: str | None = Field(None, description="A validation file with the same columns.")
    test: str | None = Field(None, description="A test file with the same columns.")
    delimiter: Annotated[str, StringConstraints(min_length=1, max_length=1)] = Field(
        ",", description="The field separator."
    )
    header: bool = Field(True, description="The first row names the columns; without it they are `0`, `1`, ...")


class SyntheticSource(_Strict):
    """Random arrays shaped like the model's inputs and outputs: a smoke run of any spec."""

    kind: Literal["synthetic"] = Field(description="`synthetic`: random data from the model's own shapes.")
    samples: _Count = Field(256, description="Training samples.")
    test_samples: _Count = Field(64, description="Test samples.")
    sequence_length: _Count = Field(16, description="Length used for variable-length (`null`) axes.")


OnError = Literal["error", "skip"]
_SplitPath = Field(None, description="A folder, or a manifest file (`.csv` / `.parquet`) of path,label rows.")


class _FileSplits(_Strict):
    train: str = Field(description="The training data: a folder with one sub-folder per class, or a manifest "
                       "file (`.csv` / `.parquet`) of path,label rows (relative to the spec file).")
    validation: str | None = _SplitPath
    test: str | None = _SplitPath
    classes: list[Annotated[str, StringConstraints(min_length=1, max_length=255)]] | None = Field(
        None, description="The class names in class-id order (default: the sub-folders' names, sorted)."
    )
    path_column: str = Field("path", description="A manifest's column of file paths (relative to the manifest).")
    label_column: str = Field("label", description="A manifest's column of class names.")
    on_error: OnError = Field(
        "error", description="A corrupt or truncated file: `error` stops naming it; `skip` leaves it out and "
        "counts it in the run folder (`data-skipped.json`)."
    )


class ImagesSource(_FileSplits):
    """Image files (PNG, JPEG, BMP, GIF's first frame), one sub-folder per class (or a manifest): streamed."""

    kind: Literal["images"] = Field(description="`images`: image files in class folders, decoded as they stream.")
    image_size: list[Annotated[int, Field(ge=1, le=65536)]] | None = Field(
        None, min_length=2, max_length=2,
        description="[height, width] every image is resized to (default: the model input's)."
    )
    color_mode: Literal["rgb", "grayscale", "rgba"] | None = Field(
        None, description="Channels: rgb (3), grayscale (1), rgba (4); default: from the model input's channels."
    )
    interpolation: Literal["bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian",
                           "mitchellcubic"] = Field("bilinear", description="How images are resized.")
    crop_to_aspect_ratio: bool = Field(
        False, description="Crop to the target aspect ratio (centred) before resizing, instead of distorting."
    )
    max_pixels: Annotated[int, Field(ge=1)] = Field(
        89_478_485, description="An image with more pixels is refused (a decompression bomb); Pillow's default."
    )


class TextSource(_FileSplits):
    """Text files (`.txt`), one sub-folder per class (or a manifest): each file one string sample, streamed."""

    kind: Literal["text"] = Field(description="`text`: `.txt` files in class folders.")
    encoding: str = Field("utf-8", description="The files' encoding.")
    max_bytes: Annotated[int, Field(ge=1)] = Field(
        1 << 20, description="A longer file is refused (or skipped with `on_error: skip`)."
    )


class ParquetSource(_Strict):
    """Parquet, Arrow IPC or Feather files; columns mapped by `data.inputs` / `data.outputs` like `csv`."""

    kind: Literal["parquet"] = Field(description="`parquet`: columns of Parquet / Arrow IPC / Feather files.")
    train: str = Field(description="The training file (relative to the spec file).")
    validation: str | None = Field(None, description="A validation file with the same columns.")
    test: str | None = Field(None, description="A test file with the same columns.")
    format: Literal["auto", "parquet", "arrow", "feather"] = Field(
        "auto", description="The file format; `auto`: from the suffix (`.parquet`, `.arrow`, `.feather`)."
    )
    batch_rows: _Count = Field(65536, description="Rows read at a time (one record batch).")


class TFRecordFeature(_Strict):
    """One `tf.train.Example` feature: its element type and per-example shape."""

    dtype: Literal["float32", "int64", "string"] = Field(description="float32, int64 or string (bytes).")
    shape: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list, description="Per-example shape.")


class TFRecordSource(_Strict):
    """`tf.train.Example` records (TensorFlow backend only)."""

    kind: Literal["tfrecord"] = Field(description="`tfrecord`: tf.train.Example records.")
    train: str = Field(description="A .tfrecord file, or a folder of them (relative to the spec file).")
    validation: str | None = Field(None, description="Validation records.")
    test: str | None = Field(None, description="Test records.")
    features: dict[_Name, TFRecordFeature] = Field(description="Feature name -> dtype and shape.")
    compression: Literal["none", "gzip", "zlib"] = Field("none", description="The files' compression.")


class HuggingFaceSource(_Strict):
    """A Hugging Face dataset on disk (`save_to_disk`), or local Parquet/CSV/JSON files read by `datasets`."""

    kind: Literal["huggingface"] = Field(description="`huggingface`: a dataset read with `datasets`, offline.")
    path: str = Field(description="A folder saved with `save_to_disk`, or a data file / folder of them.")
    format: Literal["auto", "disk", "parquet", "csv", "json"] = Field(
        "auto", description="`disk` (save_to_disk), or the data files' format; `auto` decides from the path."
    )
    splits: dict[Literal["train", "validation", "test"], str] = Field(
        default_factory=dict, description="graphspec split -> the dataset's split name (default: the same name)."
    )


def _source_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("kind")
        return kind if isinstance(kind, str) else None
    if isinstance(value, str):
        return "shorthand"
    return getattr(value, "kind", None)


def _check_shorthand(value: str) -> str:
    kind, sep, name = value.partition(":")
    if value == "synthetic" or (sep and kind in {"keras", "sklearn"} and name.isidentifier()):
        return value
    guess = ("keras" if value in KERAS_DATASETS else "sklearn" if value in SKLEARN_DATASETS else None)
    raise ValueError(f"unknown source {value!r}: write " + (f"`{guess}:{value}`" if guess else
                     "`synthetic`, `keras:NAME`, `sklearn:NAME`") + " or a mapping with `kind`")


def expand_source_shorthand(value: str) -> dict[str, Any]:
    """The mapping a source shorthand stands for: `keras:mnist` -> `{kind: keras, name: mnist}`."""
    kind, sep, name = value.partition(":")
    return {"kind": kind, "name": name} if sep else {"kind": value}


Shorthand = Annotated[
    str,
    AfterValidator(_check_shorthand),
    Field(description="`synthetic`, `keras:NAME` or `sklearn:NAME`."),
]

SourceSpec = Annotated[
    Union[
        Annotated[KerasSource, Tag("keras")],
        Annotated[SklearnSource, Tag("sklearn")],
        Annotated[NpzSource, Tag("npz")],
        Annotated[CsvSource, Tag("csv")],
        Annotated[SyntheticSource, Tag("synthetic")],
        Annotated[ImagesSource, Tag("images")],
        Annotated[TextSource, Tag("text")],
        Annotated[ParquetSource, Tag("parquet")],
        Annotated[TFRecordSource, Tag("tfrecord")],
        Annotated[HuggingFaceSource, Tag("huggingface")],
        Annotated[Shorthand, Tag("shorthand")],
    ],
    Discriminator(
        _source_tag,
        custom_error_type="invalid_source",
        custom_error_message="a source is `{kind: keras|sklearn|npz|csv|synthetic|images|text|parquet|tfrecord|"
        "huggingface, ...}` or `synthetic`, "
        "`keras:NAME`, `sklearn:NAME`",
    ),
]


# -- transforms --------------------------------------------------------------------------------
class Reshape(_Strict):
    """Reshape every sample (the batch axis is kept)."""

    reshape: list[Annotated[int, Field(ge=-1)]] = Field(description="Per-sample shape; one `-1` may be inferred.")


class Cast(_Strict):
    """Convert to another element type."""

    cast: NumericDType = Field(description="The element type, e.g. `float32`.")


class Scale(_Strict):
    """Multiply by a number."""

    scale: float = Field(description="The factor, e.g. `0.00392156862745098` (1/255).")


class Divide(_Strict):
    """Divide by a number (`divide: 255` for 8-bit images)."""

    divide: float = Field(description="The divisor; not zero.")


class Add(_Strict):
    """Add a number (after `scale`, for centring)."""

    add: float = Field(description="The number added to every element.")


class OneHot(_Strict):
    """Class indices -> one-hot vectors (a trailing axis of size 1 is dropped first)."""

    one_hot: Annotated[int, Field(ge=1, le=2**24)] = Field(description="The number of classes.")


_TRANSFORMS = ("reshape", "cast", "scale", "divide", "add", "one_hot")


def _transform_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        keys = list(value)
        return keys[0] if len(keys) == 1 and keys[0] in _TRANSFORMS else None
    for name in _TRANSFORMS:
        if name in getattr(type(value), "model_fields", {}):
            return name
    return None


Transform = Annotated[
    Union[
        Annotated[Reshape, Tag("reshape")],
        Annotated[Cast, Tag("cast")],
        Annotated[Scale, Tag("scale")],
        Annotated[Divide, Tag("divide")],
        Annotated[Add, Tag("add")],
        Annotated[OneHot, Tag("one_hot")],
    ],
    Discriminator(
        _transform_tag,
        custom_error_type="invalid_transform",
        custom_error_message="a transform is one of `{reshape: [...]}`, `{cast: DTYPE}`, `{scale: X}`, "
        "`{divide: X}`, `{add: X}`, `{one_hot: N}`",
    ),
]

Columns = str | list[str]


class AugmentLayer(BaseModel):
    """One augmentation layer: `type` (a Keras image preprocessing layer) and its arguments, checked like a
    node's (GS11x)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A Keras image preprocessing layer: RandomFlip, RandomCrop, RandomRotation, ...")

    @property
    def args(self) -> dict[str, Any]:
        """The layer's arguments (everything but `type`)."""
        return dict(self.model_extra or {})


class DataSpec(_Strict):
    """Where the arrays come from and how they map onto the model's named inputs and outputs."""

    source: SourceSpec = Field(
        description="The loader: `{kind: keras|sklearn|npz|csv|synthetic|images|text|parquet|tfrecord|"
        "huggingface, ...}`, or the shorthands "
        "`synthetic`, `keras:NAME`, `sklearn:NAME`."
    )
    inputs: dict[_Name, Columns] | None = Field(
        None,
        description="Model input name -> the source's array (npz), column or list of columns (csv). "
        "Default: an array named like the input, else `x` for a single-input model.",
    )
    outputs: dict[_Name, Columns] | None = Field(
        None,
        description="Model output name -> the source's array or column(s). Default: an array named like "
        "the output, else `y` for a single-output model.",
    )
    transforms: dict[_Name, list[Transform]] = Field(
        default_factory=dict,
        description="Model input/output name -> transforms applied in order after loading "
        "(not to synthetic data, which already has the model's shapes).",
    )
    augment: dict[_Name, list[AugmentLayer]] = Field(
        default_factory=dict,
        description="Model input name -> Keras preprocessing layers (`{type: RandomFlip, mode: horizontal}`, "
        "`{type: RandomCrop, height: 28, width: 28}`, ...) applied in order to training batches only, after "
        "`transforms`, seeded from (seed, epoch, step) so that a resumed run sees the same batches. A layer "
        "that changes the shape (a crop) is applied in inference mode to validation, test and predict data.",
    )
    adapt_samples: _Count | None = Field(
        None, description="Adapt preprocessing nodes (Normalization, lookups, ...) on at most this many training "
        "samples (default: the whole training split, streamed)."
    )
    validation_split: _Fraction = Field(
        0.0, description="Fraction of the training set held out for validation (if the source has no validation set)."
    )
    test_split: _Fraction = Field(
        0.2, description="Fraction held out as the test set, for sources without a test set (sklearn, npz, csv)."
    )
    max_samples: _Count | None = Field(None, description="Use at most this many samples of each split (quick runs).")
    batch_size: _Count = Field(32, description="Samples per batch.")
    shuffle: bool = Field(True, description="Reshuffle the training set every epoch (seeded: resumable).")
    cache: bool = Field(False, description="Cache the prepared validation and test batches in memory (tf.data cache); "
                        "in-memory sources only (a streamed source reads from disk each time: GS442).")
    prefetch: bool | _Count = Field(
        True, description="Prepare the next batches while the model trains (tf.data prefetch, Grain's prefetch buffer): "
        "true (autotuned), false, or a number of batches."
    )
    workers: _Count | None = Field(
        None, description="Streamed sources: files decoded in parallel (default: tf.data's autotuning on "
        "TensorFlow; on JAX and PyTorch, Grain threads, one per CPU but one, up to 8)."
    )

    @model_validator(mode="after")
    def _expand_shorthand(self) -> DataSpec:
        if isinstance(self.source, str):
            kind, _, name = self.source.partition(":")
            self.source = {"synthetic": SyntheticSource, "keras": KerasSource, "sklearn": SklearnSource}[kind](
                **({"kind": kind, "name": name} if name else {"kind": kind}))
        return self


# -- training ---------------------------------------------------------------------------------
class CheckpointSpec(_Strict):
    """Which epoch's model is `best.keras`, and how often the run's checkpoint is written."""

    monitor: str | None = Field(
        None, description="The metric that picks the best model; default `val_loss` with validation data, else `loss`."
    )
    mode: Mode = Field("auto", description="`min`, `max`, or `auto` (max for accuracy-like metrics).")
    every: _Seconds = Field(
        60.0, description="Seconds (or `90s`, `5m`, `1h`) between checkpoints (`last.keras`, `best.keras`, the state `--resume` reads): "
        "at most one an epoch, 0 for every epoch. The first and last epochs, an early stop and a stop by signal "
        "are always written; only a process killed outright (kill -9, a crash) loses the epochs since the last one."
    )


class EarlyStoppingSpec(_Strict):
    """`keras.callbacks.EarlyStopping`."""

    monitor: str | None = Field(None, description="Metric to watch; default as for the checkpoint.")
    patience: Annotated[int, Field(ge=0)] = Field(5, description="Epochs without improvement before stopping.")
    min_delta: Annotated[float, Field(ge=0)] = Field(0.0, description="Smallest change that counts as improvement.")
    mode: Mode = Field("auto", description="`min`, `max` or `auto`.")
    start_from_epoch: Annotated[int, Field(ge=0)] = Field(0, description="Epochs before stopping may happen.")
    restore_best_weights: bool = Field(
        False, description="Keep the best epoch's weights at the end (the run's `best.keras` is kept either way)."
    )


class ReduceLROnPlateauSpec(_Strict):
    """`keras.callbacks.ReduceLROnPlateau`."""

    monitor: str | None = Field(None, description="Metric to watch; default as for the checkpoint.")
    factor: Annotated[float, Field(gt=0, lt=1)] = Field(0.1, description="New rate = rate * factor.")
    patience: Annotated[int, Field(ge=0)] = Field(3, description="Epochs without improvement before reducing.")
    min_delta: Annotated[float, Field(ge=0)] = Field(1e-4, description="Smallest change that counts as improvement.")
    cooldown: Annotated[int, Field(ge=0)] = Field(0, description="Epochs to wait after a reduction.")
    min_lr: Annotated[float, Field(ge=0)] = Field(0.0, description="Lower bound on the learning rate.")
    mode: Mode = Field("auto", description="`min`, `max` or `auto`.")


class StepDecay(_Strict):
    """rate = initial * factor ** (epoch // every)."""

    type: Literal["step"] = Field(description="`step`.")
    factor: Annotated[float, Field(gt=0, le=1)] = Field(0.5, description="Multiplier applied every `every` epochs.")
    every: _Count = Field(10, description="Epochs between decays.")


class ExponentialDecay(_Strict):
    """rate = initial * rate ** epoch."""

    type: Literal["exponential"] = Field(description="`exponential`.")
    rate: Annotated[float, Field(gt=0, le=1)] = Field(0.95, description="Per-epoch multiplier.")


class CosineDecay(_Strict):
    """Linear warm-up, then cosine decay from the initial rate to `min_lr` at the last epoch."""

    type: Literal["cosine"] = Field(description="`cosine`.")
    min_lr: Annotated[float, Field(ge=0)] = Field(0.0, description="The rate at the last epoch.")
    warmup_epochs: Annotated[int, Field(ge=0)] = Field(0, description="Epochs of linear warm-up from 0.")


LRSchedule = Annotated[
    Union[StepDecay, ExponentialDecay, CosineDecay],
    Field(discriminator="type", description="A per-epoch learning-rate schedule."),
]


class TrainSpec(_Strict):
    """How `graphspec train` trains."""

    model: _Name | None = Field(None, description="The model to train when the spec defines several.")
    epochs: _Count = Field(10, description="Epochs to train (the total, also when resuming).")
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = Field(
        None, description="Seed for weights, shuffling and dropout; chosen and recorded in the run when omitted."
    )
    deterministic: bool = Field(False, description="Deterministic kernels (slower): TensorFlow's op determinism, "
                                "PyTorch's deterministic algorithms, XLA's deterministic GPU ops on JAX.")
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec, description="Which model is `best.keras`.")
    early_stopping: EarlyStoppingSpec | None = Field(None, description="Stop when a metric stops improving.")
    reduce_lr_on_plateau: ReduceLROnPlateauSpec | None = Field(
        None, description="Lower the learning rate when a metric stops improving."
    )
    lr_schedule: LRSchedule | None = Field(None, description="Set the learning rate at the start of every epoch.")
    tensorboard: bool = Field(True, description="Write TensorBoard logs into the run folder.")
    adapt: bool = Field(
        True, description="Adapt preprocessing nodes (Normalization, TextVectorization, StringLookup, IntegerLookup, "
        "Discretization) whose state the spec does not fix on the training data before a fresh run's first epoch."
    )


# -- derived settings ------------------------------------------------------------------------------
def has_validation(data: DataSpec | None) -> bool:
    if data is None:
        return False
    src = data.source
    return bool(getattr(src, "validation", None)) or data.validation_split > 0


def default_monitor(data: DataSpec | None) -> str:
    return "val_loss" if has_validation(data) else "loss"
