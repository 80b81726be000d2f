"""Optimizers (Adam, AdamW), gradient clipping and learning-rate schedules.

adam.py and clip.py are the plain versions, one parameter at a time, as their docstrings
write them. The trainer runs the flat-buffer ones of the speed corner (tinynmt/fast/
flat_adam.py: FlatAdam, FlatAdamW, flat_clip_grad_norm_), tested equal to these and
re-exported here.
"""
from .adam import Adam, AdamW
from .clip import clip_grad_norm_
from .schedules import SCHEDULES, budget_end_step, constant_lr, cooldown_factor, inverse_sqrt_lr
from ..fast.flat_adam import FlatAdam, FlatAdamW, flat_clip_grad_norm_  # after .clip: it imports it

__all__ = ["Adam", "AdamW", "FlatAdam", "FlatAdamW", "SCHEDULES", "budget_end_step", "clip_grad_norm_",
           "constant_lr", "cooldown_factor", "flat_clip_grad_norm_", "inverse_sqrt_lr"]
