"""Training as a library: the step and its plug-ins, trainer, loop, config, checkpoints, run folders, logs."""
