"""A variational autoencoder whose training step is Python (for docs/import.md's VAE section).

`encoder()` and `decoder()` are functional models (importable); `VAE` subclasses keras.Model to add
the KL term in `train_step` (not importable: its `train_step` is code). `Sampling` is the custom
layer the encoder needs: this file is also the plugin that defines it.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops


class Sampling(layers.Layer):
    """z = mean + exp(log_var / 2) * eps, eps ~ N(0, 1)."""

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any) -> Any:
        mean, log_var = inputs
        eps = keras.random.normal(ops.shape(mean), seed=self.generator)
        return mean + ops.exp(0.5 * log_var) * eps

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}


def encoder(latent: int = 2) -> Any:
    image = keras.Input((28, 28, 1), name="image")
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(image)
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Dense(16, activation="relu")(layers.Flatten()(x))
    mean = layers.Dense(latent, name="z_mean")(x)
    log_var = layers.Dense(latent, name="z_log_var")(x)
    z = Sampling(seed=1, name="z")([mean, log_var])
    return keras.Model(image, [mean, log_var, z], name="encoder")


def decoder(latent: int = 2) -> Any:
    z = keras.Input((latent,), name="latent")
    x = layers.Reshape((7, 7, 32))(layers.Dense(7 * 7 * 32, activation="relu")(z))
    x = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu")(x)
    return keras.Model(z, layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid")(x), name="decoder")


class VAE(keras.Model):
    """Reconstruction loss plus the KL divergence of the latent distribution from N(0, 1)."""

    def __init__(self, encoder: Any, decoder: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.tracker = keras.metrics.Mean(name="loss")

    def call(self, x: Any) -> Any:
        return self.decoder(self.encoder(x)[2])

    def train_step(self, data: Any) -> dict[str, Any]:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            mean, log_var, z = self.encoder(data)
            rebuilt = self.decoder(z)
            reconstruction = ops.mean(ops.sum(keras.losses.binary_crossentropy(data, rebuilt), axis=(1, 2)))
            kl = -0.5 * ops.mean(ops.sum(1 + log_var - ops.square(mean) - ops.exp(log_var), axis=1))
            loss = reconstruction + kl
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.tracker.update_state(loss)
        return {"loss": self.tracker.result()}


def forward(latent: int = 2) -> Any:
    """The VAE's forward pass as a functional model over its two parts: what a spec can hold."""
    enc, dec = encoder(latent), decoder(latent)
    image = keras.Input((28, 28, 1), name="image")
    mean, log_var, z = enc(image)
    return keras.Model(image, [dec(z), mean, log_var], name="vae")
