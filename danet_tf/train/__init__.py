"""Training: the task seams (`task`: model, inputs, losses, metrics,
optimiser from a config; the recipe itself is `danet_tf.models`' losses,
metrics and optimizer), callbacks, distribution strategies, run directories
and the `fit`-based trainer."""
