"""Stage 3, the resolved graph -> keras.Model: loading Keras, the emitter, plugin loading, app layers.

The only place that creates Keras layers from a spec.
"""
