"""Matrix-multiply FLOPs of one training step of the tutorial Transformer, from the shapes.

Legend: B batch, S source length, T target length (decoder input), D hidden, P pf_dim,
V target vocabulary. A product (n, k) @ (k, m) costs 2 n k m FLOPs; its backward costs
twice that (one product for each input's gradient).
"""


def forward_matmul_flops(B, S, T, D, P, V, enc_layers=3, dec_layers=3):
    """FLOPs of every matrix product in one forward pass."""
    linear = lambda n, k, m: 2 * n * k * m             # noqa: E731  (n rows through a k->m layer)
    attention = lambda q, k: 2 * (2 * B * q * k * D)   # noqa: E731  (Q K^T and A V over all heads)
    enc = (4 * linear(B * S, D, D) + linear(B * S, D, P) + linear(B * S, P, D) + attention(S, S))
    dec = (4 * linear(B * T, D, D) + attention(T, T)                                  # self
           + 2 * linear(B * T, D, D) + 2 * linear(B * S, D, D) + attention(T, S)      # cross
           + linear(B * T, D, P) + linear(B * T, P, D))                               # feed-forward
    return enc_layers * enc + dec_layers * dec + linear(B * T, D, V)


def step_matmul_flops(B, S, T, D, P, V, enc_layers=3, dec_layers=3):
    """Forward plus backward: three times the forward products."""
    return 3 * forward_matmul_flops(B, S, T, D, P, V, enc_layers, dec_layers)
