"""Learning-rate schedules: step -> rate, chosen by name from SCHEDULES (the --schedule flag)."""
import math


def constant_lr(step, base_lr, warmup=0, init_lr=0.0):
    """The tutorial's schedule: base_lr at every step."""
    return base_lr


def inverse_sqrt_lr(step, base_lr, warmup=4000, init_lr=0.0):
    """Linear warmup from init_lr to base_lr over `warmup` steps, then decay as 1/sqrt(step)
    (the paper's shape; init_lr is fairseq's --warmup-init-lr)."""
    if warmup < 1:
        raise ValueError(f"inverse_sqrt_lr needs warmup >= 1 step, got {warmup}")
    step = max(step, 1)
    if step < warmup:
        return init_lr + (base_lr - init_lr) * step / warmup
    return base_lr * math.sqrt(warmup / step)


def cooldown_factor(step, total, cooldown):
    """The multiplier of a linear cooldown: 1 until the last `cooldown` of `total` steps, then
    N/N, (N-1)/N, ..., 1/N over them (the decay of warmup-stable-decay schedules, Hägele et al.
    2024; 0 or no total: no cooldown)."""
    if not cooldown or total is None:
        return 1.0
    return min(1.0, max(total - step + 1, 1) / cooldown)


def budget_end_step(budget_s, epoch_seconds, step, max_steps, cooldown, end):
    """Where a cooldown of `cooldown` steps should end so that a time budget does not cut it
    short, at step `step` after epochs that took `epoch_seconds`: after as many epochs as the
    budget holds at their mean time (the epochs a --max-minutes run gets), at their mean steps an
    epoch; never past max_steps, nor so soon that the cooldown would have begun already. Once it
    has begun (step >= end - cooldown) its end stays `end`."""
    if step >= end - cooldown:
        return end
    epochs = len(epoch_seconds)
    fitting = int(budget_s * epochs / max(sum(epoch_seconds), 1e-9))   # epochs at the mean time so far
    return max(min(max_steps, fitting * step // epochs), step + cooldown)


SCHEDULES = {"constant": constant_lr, "inverse_sqrt": inverse_sqrt_lr}
