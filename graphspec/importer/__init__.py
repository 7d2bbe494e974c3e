"""`graphspec import`: a functional Keras model -> a readable spec, checked by building it back.

The entry points used by the CLI, the tests and the benchmarks. The work is split by role:

* :mod:`graphspec.importer.assemble` runs one import (:func:`import_model`);
  :mod:`graphspec.importer.walk` walks the model's graph and names every input, node and model;
* :mod:`graphspec.importer.match` matches each layer or keras.ops call to a spec node,
  :mod:`graphspec.importer.layer_args` a layer's type and arguments, and
  :mod:`graphspec.importer.contract` checks custom layers against Keras's serialization contract;
* :mod:`graphspec.importer.repeats` writes repeated structure as blocks, and
  :mod:`graphspec.importer.write` writes the spec as YAML (:func:`to_yaml`);
* :mod:`graphspec.importer.verify` builds the spec back and compares the models
  (:func:`verify_text`, :func:`compare`);
* :mod:`graphspec.importer.load` loads the model a SOURCE names (:func:`load_source`,
  :func:`import_source`); :mod:`graphspec.importer.values` holds the config-value helpers they share.

Importing this package does not import Keras; the entry points do, when called.
"""

from graphspec.importer.load import import_source, load_source
from graphspec.importer.verify import build_text, compare, layer_types, verify_text
from graphspec.importer.assemble import Imported, import_model
from graphspec.importer.write import to_yaml

__all__ = ["Imported", "build_text", "compare", "import_model", "import_source", "layer_types", "load_source",
           "to_yaml", "verify_text"]
