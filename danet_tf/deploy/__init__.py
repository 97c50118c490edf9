"""Deployment: exports (SavedModel, TFLite, ONNX, .keras), loading, sliding-window
inference, dataset evaluation and attention pictures."""
