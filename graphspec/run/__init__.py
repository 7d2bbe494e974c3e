"""Running models: data, the trainer, callbacks and progress, run folders, evaluate/predict/export, artifacts."""
