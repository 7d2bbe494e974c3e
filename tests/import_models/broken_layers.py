"""Custom layers for the import tests: one that keeps Keras's serialization contract, and some
that break it in the ways people do (a plugin for `graphspec import --plugin`)."""

from __future__ import annotations

from typing import Any

from keras import layers, ops


class Scaled(layers.Layer):
    """A dense projection times a constant: keeps the contract."""

    def __init__(self, units: int, factor: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.factor = factor

    def build(self, shape: Any) -> None:
        self.kernel = self.add_weight(shape=(shape[-1], self.units))

    def call(self, x: Any) -> Any:
        return ops.matmul(x, self.kernel) * self.factor

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "factor": self.factor}


class NoKwargs(Scaled):
    """`__init__` without `**kwargs`: Keras cannot pass it `name`."""

    def __init__(self, units: int) -> None:  # type: ignore[override]
        super().__init__(units)


class ForgetsUnits(Scaled):
    """get_config() leaves out `units` (the attribute has that name)."""

    def __init__(self, units: int = 4, factor: float = 1.0, **kwargs: Any) -> None:
        super().__init__(units, factor, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["units"]
        return config


class HiddenUnits(layers.Layer):
    """get_config() leaves out `units`, stored under another name."""

    def __init__(self, units: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._width = units

    def build(self, shape: Any) -> None:
        self.kernel = self.add_weight(shape=(shape[-1], self._width))

    def call(self, x: Any) -> Any:
        return ops.matmul(x, self.kernel)

    def get_config(self) -> dict[str, Any]:
        return dict(super().get_config())


class NoConfig(layers.Layer):
    """An __init__ argument Keras cannot put in a config (an object), and no get_config()."""

    def __init__(self, init: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.init = init

    def build(self, shape: Any) -> None:
        self.scale = self.add_weight(shape=(shape[-1],), initializer=self.init)

    def call(self, x: Any) -> Any:
        return x * self.scale


class MinimalCell(layers.Layer):
    """A recurrent cell: h = x W + h_prev."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, shape: Any) -> None:
        self.kernel = self.add_weight(shape=(shape[-1], self.units))

    def call(self, x: Any, states: Any) -> Any:
        h = ops.matmul(x, self.kernel) + states[0]
        return h, [h]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}
