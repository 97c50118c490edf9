"""Command-line entry points (`danet-train`, ...); `training/*.py` call them."""
