"""Multi-head attention and the position-wise feed-forward block, as in the tutorial.

`MultiHeadAttentionLayer.forward` is the tutorial's: project, split into heads, attend,
merge the heads, project. Its pieces are methods (`split_heads`, `attend`, `merge_heads`)
so that decoding with cached keys/values (tinynmt/decoding/cache.py) composes the same
maths instead of writing it again.

Legend: B batch, Q query length, K key length, D hidden (hid_dim), H heads, Dh head dim, P pf_dim.
"""
import math

from ..autograd import softmax
from .layers import Dropout, Linear
from .module import Module

MASK_VALUE = -1e10  # the tutorial's: exp(-1e10 - max) is exactly 0 in float32


class MultiHeadAttentionLayer(Module):
    """softmax(Q K^T / sqrt(Dh)) V over H heads; returns the output and the attention weights."""

    def __init__(self, hid_dim, n_heads, dropout):     # dropout: on the attention weights
        super().__init__()
        if hid_dim % n_heads:
            raise ValueError(f"hid_dim {hid_dim} is not divisible by n_heads {n_heads}")
        self.hid_dim, self.n_heads, self.head_dim = hid_dim, n_heads, hid_dim // n_heads
        self.fc_q = Linear(hid_dim, hid_dim)
        self.fc_k = Linear(hid_dim, hid_dim)
        self.fc_v = Linear(hid_dim, hid_dim)
        self.fc_o = Linear(hid_dim, hid_dim)
        self.dropout = Dropout(dropout)
        self.scale = math.sqrt(self.head_dim)

    def split_heads(self, x):
        """(B, L, D) -> (B, H, L, Dh)"""
        batch_size = x.shape[0]
        return x.view(batch_size, -1, self.n_heads, self.head_dim).permute(0, 2, 1, 3)

    def merge_heads(self, x):
        """(B, H, L, Dh) -> (B, L, D)"""
        batch_size = x.shape[0]
        return x.permute(0, 2, 1, 3).reshape(batch_size, -1, self.hid_dim)

    def attend(self, Q, K, V, mask=None):
        """Scaled dot-product attention per head -> (output (B, H, Q, Dh), weights (B, H, Q, K))."""
        energy = (Q @ K.permute(0, 1, 3, 2)) / self.scale       # (B, H, Q, Dh) @ (B, H, Dh, K) -> (B, H, Q, K)
        if mask is not None:
            energy = energy.masked_fill(mask == 0, MASK_VALUE)  # mask (B, 1, 1|Q, K)
        attention = softmax(energy, axis=-1)                    # (B, H, Q, K)
        return self.dropout(attention) @ V, attention           # (B, H, Q, K) @ (B, H, K, Dh) -> (B, H, Q, Dh)

    def forward(self, query, key, value, mask=None):
        """query (B, Q, D), key/value (B, K, D), mask broadcastable to (B, H, Q, K)
        -> output (B, Q, D), attention weights (B, H, Q, K)."""
        Q = self.split_heads(self.fc_q(query))                  # (B, H, Q, Dh)
        K = self.split_heads(self.fc_k(key))                    # (B, H, K, Dh)
        V = self.split_heads(self.fc_v(value))                  # (B, H, K, Dh)
        x, attention = self.attend(Q, K, V, mask)               # (B, H, Q, Dh), (B, H, Q, K)
        x = self.fc_o(self.merge_heads(x))                      # (B, Q, D)
        return x, attention


class PositionwiseFeedforwardLayer(Module):
    """fc_2(dropout(relu(fc_1(x)))): (B, L, D) -> (B, L, P) -> (B, L, D)."""

    def __init__(self, hid_dim, pf_dim, dropout):      # dropout: after the ReLU
        super().__init__()
        self.fc_1 = Linear(hid_dim, pf_dim)
        self.fc_2 = Linear(pf_dim, hid_dim)
        self.dropout = Dropout(dropout)

    def forward(self, x):
        return self.fc_2(self.dropout(self.fc_1(x).relu()))
