"""Training: losses, metrics and optimiser (keras.ops, every backend), callbacks,
distribution strategies and the `fit`-based trainer."""
