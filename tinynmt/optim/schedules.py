"""Learning-rate schedules: step -> rate, chosen by name from SCHEDULES (the --schedule flag)."""
import math


def constant_lr(step, base_lr, warmup=0):
    """The tutorial's schedule: base_lr at every step."""
    return base_lr


def inverse_sqrt_lr(step, base_lr, warmup=4000):
    """Linear warmup to base_lr over `warmup` steps, then decay as 1/sqrt(step) (the paper's shape)."""
    if warmup < 1:
        raise ValueError(f"inverse_sqrt_lr needs warmup >= 1 step, got {warmup}")
    step = max(step, 1)
    return base_lr * min(step / warmup, math.sqrt(warmup / step))


SCHEDULES = {"constant": constant_lr, "inverse_sqrt": inverse_sqrt_lr}
