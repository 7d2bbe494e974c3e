"""The functional API guide's CustomDense layer, as a graphspec plugin.

Name this file with ``--plugin specs/plugins/custom_dense.py`` (or list it in
``[tool.graphspec] plugins`` of pyproject.toml) and a spec can use
``type: CustomDense``. Registering it with Keras makes saved models load with
``keras.models.load_model`` once this module is imported.
"""

import keras


@keras.saving.register_keras_serializable(package="graphspec_examples")
class CustomDense(keras.layers.Layer):
    # What `graphspec lint` knows about this layer without running this file: it reads
    # the dict with `ast` and evaluates the expressions itself (docs/lint.md, "Plugin
    # layers"); `input` is the input's shape without the batch axis, `units` the argument.
    # `graphspec build` checks them against the layer Keras builds.
    graphspec_shapes = {
        "output": "[*input[:-1], units]",
        "params": "input[-1] * units + units",
        "macs": "prod(input) * units",
    }

    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True
        )
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)

    def call(self, inputs):
        return keras.ops.matmul(inputs, self.w) + self.b

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config
