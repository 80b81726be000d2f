"""Training as a library: config, trainer, loop, checkpoints, run folders, logs, data parallelism."""
