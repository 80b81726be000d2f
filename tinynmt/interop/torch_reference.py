"""The tutorial's Transformer written in PyTorch, the reference that tinynmt is checked against.

Optional: only tests and benchmarks import it, and only where PyTorch is installed. The
classes and attribute names are the tutorial's, so `state_dict()` keys equal tinynmt's and
weights move one to one (`load_tinynmt_weights`). attention_dropout / activation_dropout
(None: the layer's dropout, the tutorial's) set the dropout on the attention weights and after
the feed-forward ReLU apart, as tinynmt's ModelConfig does.

It shares no code with tinynmt (it imports only PyTorch), so a parity test compares two
independent writings of the model.
Legend: B batch, S source length, T target length, D hidden, H heads, Dh head dim.
"""
import torch
from torch import nn


def make_norms(layer, layer_norms, names, hid_dim):
    """The article's one `layer_norm` used after every sublayer ("shared"), or the later
    notebook's one norm per sublayer ("separate"); returns the norms in sublayer order."""
    if layer_norms == "shared":
        layer.layer_norm = nn.LayerNorm(hid_dim)
        return [layer.layer_norm] * len(names)
    if layer_norms != "separate":
        raise ValueError(f"layer_norms must be shared or separate, got {layer_norms!r}")
    for name in names:
        setattr(layer, name, nn.LayerNorm(hid_dim))
    return [getattr(layer, name) for name in names]


class MultiHeadAttentionLayer(nn.Module):
    def __init__(self, hid_dim, n_heads, dropout):
        super().__init__()
        self.hid_dim, self.n_heads, self.head_dim = hid_dim, n_heads, hid_dim // n_heads
        self.fc_q = nn.Linear(hid_dim, hid_dim)
        self.fc_k = nn.Linear(hid_dim, hid_dim)
        self.fc_v = nn.Linear(hid_dim, hid_dim)
        self.fc_o = nn.Linear(hid_dim, hid_dim)
        self.dropout = nn.Dropout(dropout)
        self.scale = self.head_dim ** 0.5

    def forward(self, query, key, value, mask=None):
        batch_size = query.shape[0]
        Q = self.fc_q(query).view(batch_size, -1, self.n_heads, self.head_dim).permute(0, 2, 1, 3)
        K = self.fc_k(key).view(batch_size, -1, self.n_heads, self.head_dim).permute(0, 2, 1, 3)
        V = self.fc_v(value).view(batch_size, -1, self.n_heads, self.head_dim).permute(0, 2, 1, 3)
        energy = torch.matmul(Q, K.permute(0, 1, 3, 2)) / self.scale   # (B, H, Q, K)
        if mask is not None:
            energy = energy.masked_fill(mask == 0, -1e10)
        attention = torch.softmax(energy, dim=-1)
        x = torch.matmul(self.dropout(attention), V)                     # (B, H, Q, Dh)
        x = x.permute(0, 2, 1, 3).contiguous().view(batch_size, -1, self.hid_dim)
        return self.fc_o(x), attention


class PositionwiseFeedforwardLayer(nn.Module):
    def __init__(self, hid_dim, pf_dim, dropout):
        super().__init__()
        self.fc_1 = nn.Linear(hid_dim, pf_dim)
        self.fc_2 = nn.Linear(pf_dim, hid_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.fc_2(self.dropout(torch.relu(self.fc_1(x))))


class EncoderLayer(nn.Module):
    def __init__(self, hid_dim, n_heads, pf_dim, dropout, layer_norms="shared", attention_dropout=None,
                 activation_dropout=None):
        super().__init__()
        self.norms = make_norms(self, layer_norms, ("self_attn_layer_norm", "ff_layer_norm"), hid_dim)
        attention_p = dropout if attention_dropout is None else attention_dropout
        activation_p = dropout if activation_dropout is None else activation_dropout
        self.self_attention = MultiHeadAttentionLayer(hid_dim, n_heads, attention_p)
        self.positionwise_feedforward = PositionwiseFeedforwardLayer(hid_dim, pf_dim, activation_p)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src, src_mask):
        norm1, norm2 = self.norms
        _src, _ = self.self_attention(src, src, src, src_mask)
        src = norm1(src + self.dropout(_src))
        return norm2(src + self.dropout(self.positionwise_feedforward(src)))


class Encoder(nn.Module):
    def __init__(self, input_dim, hid_dim, n_layers, n_heads, pf_dim, dropout, max_length=100,
                 layer_norms="shared", attention_dropout=None, activation_dropout=None):
        super().__init__()
        self.tok_embedding = nn.Embedding(input_dim, hid_dim)
        self.pos_embedding = nn.Embedding(max_length, hid_dim)
        self.layers = nn.ModuleList([EncoderLayer(hid_dim, n_heads, pf_dim, dropout, layer_norms,
                                                  attention_dropout, activation_dropout)
                                     for _ in range(n_layers)])
        self.dropout = nn.Dropout(dropout)
        self.scale = hid_dim ** 0.5

    def forward(self, src, src_mask):
        pos = torch.arange(0, src.shape[1], device=src.device).unsqueeze(0).repeat(src.shape[0], 1)
        src = self.dropout(self.tok_embedding(src) * self.scale + self.pos_embedding(pos))
        for layer in self.layers:
            src = layer(src, src_mask)
        return src


class DecoderLayer(nn.Module):
    def __init__(self, hid_dim, n_heads, pf_dim, dropout, layer_norms="shared", attention_dropout=None,
                 activation_dropout=None):
        super().__init__()
        self.norms = make_norms(self, layer_norms, ("self_attn_layer_norm", "enc_attn_layer_norm",
                                                    "ff_layer_norm"), hid_dim)
        attention_p = dropout if attention_dropout is None else attention_dropout
        activation_p = dropout if activation_dropout is None else activation_dropout
        self.self_attention = MultiHeadAttentionLayer(hid_dim, n_heads, attention_p)
        self.encoder_attention = MultiHeadAttentionLayer(hid_dim, n_heads, attention_p)
        self.positionwise_feedforward = PositionwiseFeedforwardLayer(hid_dim, pf_dim, activation_p)
        self.dropout = nn.Dropout(dropout)

    def forward(self, trg, enc_src, trg_mask, src_mask):
        norm1, norm2, norm3 = self.norms
        _trg, _ = self.self_attention(trg, trg, trg, trg_mask)
        trg = norm1(trg + self.dropout(_trg))
        _trg, attention = self.encoder_attention(trg, enc_src, enc_src, src_mask)
        trg = norm2(trg + self.dropout(_trg))
        trg = norm3(trg + self.dropout(self.positionwise_feedforward(trg)))
        return trg, attention


class Decoder(nn.Module):
    def __init__(self, output_dim, hid_dim, n_layers, n_heads, pf_dim, dropout, max_length=100,
                 layer_norms="shared", attention_dropout=None, activation_dropout=None):
        super().__init__()
        self.tok_embedding = nn.Embedding(output_dim, hid_dim)
        self.pos_embedding = nn.Embedding(max_length, hid_dim)
        self.layers = nn.ModuleList([DecoderLayer(hid_dim, n_heads, pf_dim, dropout, layer_norms,
                                                  attention_dropout, activation_dropout)
                                     for _ in range(n_layers)])
        self.fc_out = nn.Linear(hid_dim, output_dim)
        self.dropout = nn.Dropout(dropout)
        self.scale = hid_dim ** 0.5

    def forward(self, trg, enc_src, trg_mask, src_mask):
        pos = torch.arange(0, trg.shape[1], device=trg.device).unsqueeze(0).repeat(trg.shape[0], 1)
        trg = self.dropout(self.tok_embedding(trg) * self.scale + self.pos_embedding(pos))
        for layer in self.layers:
            trg, attention = layer(trg, enc_src, trg_mask, src_mask)
        return self.fc_out(trg), attention


class Seq2Seq(nn.Module):
    def __init__(self, encoder, decoder, src_pad_idx, trg_pad_idx):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.src_pad_idx, self.trg_pad_idx = src_pad_idx, trg_pad_idx

    def make_src_mask(self, src):
        return (src != self.src_pad_idx).unsqueeze(1).unsqueeze(2)

    def make_trg_mask(self, trg):
        trg_pad_mask = (trg != self.trg_pad_idx).unsqueeze(1).unsqueeze(2)
        trg_len = trg.shape[1]
        trg_sub_mask = torch.tril(torch.ones((trg_len, trg_len), device=trg.device)).bool()
        return trg_pad_mask & trg_sub_mask

    def forward(self, src, trg):
        src_mask, trg_mask = self.make_src_mask(src), self.make_trg_mask(trg)
        enc_src = self.encoder(src, src_mask)
        return self.decoder(trg, enc_src, trg_mask, src_mask)


def build_torch_transformer(src_vocab_size, trg_vocab_size, src_pad_idx, trg_pad_idx, hid_dim=256,
                            n_layers=3, n_heads=8, pf_dim=512, dropout=0.1, max_length=100,
                            layer_norms="shared", attention_dropout=None, activation_dropout=None):
    """The tutorial's model in PyTorch (xavier_uniform_ on every weight with more than one dim);
    layer_norms="separate" gives the later notebook's three norms per decoder layer."""
    sublayers = (layer_norms, attention_dropout, activation_dropout)
    enc = Encoder(src_vocab_size, hid_dim, n_layers, n_heads, pf_dim, dropout, max_length, *sublayers)
    dec = Decoder(trg_vocab_size, hid_dim, n_layers, n_heads, pf_dim, dropout, max_length, *sublayers)
    model = Seq2Seq(enc, dec, src_pad_idx, trg_pad_idx)
    for p in model.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
    return model


def load_tinynmt_weights(torch_model, tinynmt_model):
    """Copy a tinynmt model's weights into the PyTorch model (the keys are the same)."""
    state = {k: torch.from_numpy(v) for k, v in tinynmt_model.state_dict().items()}
    torch_model.load_state_dict(state, strict=True)
    return torch_model
