"""Layers that `keras.applications` defines outside `keras.layers`, as a graphspec plugin.

ConvNeXt scales each block's residual branch with a learned per-channel
`LayerScale`; InceptionResNetV2 adds its scaled residual with a
`CustomScaleLayer`. Both live in private Keras modules
(`keras.src.applications.convnext`, `keras.src.applications.inception_resnet_v2`),
not in `keras.layers`. graphspec always loads this plugin (see
`plugins.BUILTIN`), so specs imported from those applications build as they are. The
classes below behave exactly like Keras's (same arguments, weights, config and
computation); the round-trip tests compare outputs against the originals.
"""

from __future__ import annotations

from typing import Any

from graphspec.build.backend import keras


@keras.saving.register_keras_serializable(package="graphspec")
class LayerScale(keras.layers.Layer):
    """`x * gamma`, with `gamma` a learned vector of `projection_dim` values (ConvNeXt)."""

    def __init__(self, init_values: float, projection_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.init_values = init_values
        self.projection_dim = projection_dim

    def build(self, _: Any) -> None:
        self.gamma = self.add_weight(
            shape=(self.projection_dim,),
            initializer=keras.initializers.Constant(self.init_values),
            trainable=True,
        )

    def call(self, x: Any) -> Any:
        return x * self.gamma

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update({"init_values": self.init_values, "projection_dim": self.projection_dim})
        return config


@keras.saving.register_keras_serializable(package="graphspec")
class CustomScaleLayer(keras.layers.Layer):
    """`inputs[0] + inputs[1] * scale` (InceptionResNetV2's residual connection)."""

    def __init__(self, scale: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, inputs: Any) -> Any:
        return inputs[0] + inputs[1] * self.scale

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update({"scale": self.scale})
        return config
