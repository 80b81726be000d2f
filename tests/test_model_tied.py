"""Tied embeddings (Press & Wolf, 2017): one (V, D) matrix as the decoder's input embedding,
its output projection and, with one vocabulary, the encoder's embedding."""
import numpy as np
import pytest

from tinynmt.autograd import GradcheckError, gradcheck
from tinynmt.nn import CrossEntropyLoss, ModelConfig, build_transformer, tie_embedding_weights
from tinynmt.optim import Adam

PAD, BOS, EOS, V = 1, 2, 3, 13
TINY = ModelConfig(hid_dim=16, enc_layers=1, dec_layers=1, enc_heads=2, dec_heads=2, enc_pf_dim=32,
                   dec_pf_dim=32, enc_dropout=0.0, dec_dropout=0.0, max_length=12)


def tied_model(share_encoder=True, src_vocab=V):
    config = TINY.replace(tie_embeddings=True, share_vocab=share_encoder)
    return build_transformer(src_vocab, V, PAD, PAD, config, seed=0)


def batch(rng):
    src = rng.integers(4, V, (3, 5))
    src[0, 4:] = PAD
    trg = rng.integers(4, V, (3, 6))
    trg[:, 0] = BOS
    trg[1, 4], trg[1, 5:] = EOS, PAD
    return src, trg


def loss_fn(model, src, trg):
    logits, _ = model(src, trg[:, :-1])                                    # (B, T-1, V)
    return CrossEntropyLoss(ignore_index=PAD)(logits.reshape(-1, V), trg[:, 1:].reshape(-1))


def test_one_parameter_under_three_names():
    model = tied_model()
    shared = model.decoder.tok_embedding.weight
    assert model.decoder.fc_out.weight is shared and model.encoder.tok_embedding.weight is shared
    names = [name for name, _ in model.named_parameters()]
    assert "decoder.fc_out.weight" not in names and "decoder.tok_embedding.weight" not in names
    state = model.state_dict()          # every name still listed, as PyTorch does
    for name in ("encoder.tok_embedding.weight", "decoder.tok_embedding.weight", "decoder.fc_out.weight"):
        assert np.array_equal(state[name], shared.data)
    untied = build_transformer(V, V, PAD, PAD, TINY, seed=0)
    assert untied.num_parameters() - model.num_parameters() == 2 * V * 16


def test_decoder_only_tying_keeps_the_encoders_own_embedding():
    model = tied_model(share_encoder=False, src_vocab=V + 4)
    assert model.decoder.fc_out.weight is model.decoder.tok_embedding.weight
    assert model.encoder.tok_embedding.weight is not model.decoder.tok_embedding.weight


def test_sharing_the_encoder_needs_one_vocabulary():
    with pytest.raises(ValueError, match="one vocabulary"):
        tied_model(src_vocab=V + 1)


def test_tied_gradient_is_the_sum_of_its_three_uses(rng):
    model = tied_model()
    for param in model.parameters():
        param.data = param.data.astype(np.float64)
    src, trg = batch(rng)
    try:
        gradcheck(lambda *_: loss_fn(model, src, trg), [model.decoder.fc_out.weight],
                  max_full=0, n_directions=4)
    except GradcheckError as exc:
        raise GradcheckError(f"tied embedding: {exc}") from None


def test_an_adam_step_keeps_the_tie(rng):
    model = tied_model()
    optimizer = Adam(model.parameters(), lr=1e-2)
    src, trg = batch(rng)
    before = model.decoder.fc_out.weight.data.copy()
    loss_fn(model, src, trg).backward()
    optimizer.step()
    shared = model.decoder.fc_out.weight
    assert not np.array_equal(shared.data, before)
    assert model.encoder.tok_embedding.weight is shared and model.decoder.tok_embedding.weight is shared


def test_tie_embedding_weights_on_a_built_model_matches_the_flag():
    a = tied_model()
    b = tie_embedding_weights(build_transformer(V, V, PAD, PAD, TINY, seed=0), share_encoder=True)
    for (name_a, pa), (name_b, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert name_a == name_b and np.array_equal(pa.data, pb.data)
