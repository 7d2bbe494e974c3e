"""The reverse direction, keras.Model -> spec: walking the model, matching calls, writing YAML, the round trip."""
