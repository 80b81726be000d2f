"""Weight initialisation schemes (nn/init.py): the tutorial's, unchanged, and fairseq's
Transformer init, which its recipes (tiny-ende's transformer_tiny) were tuned with."""
import math

import numpy as np
import pytest

from tinynmt.nn import ModelConfig, build_transformer
from tinynmt.nn.init import initialize_weights
from tinynmt.training.config import Config

PAD, V, D = 1, 400, 64
SMALL = ModelConfig(hid_dim=D, enc_layers=2, dec_layers=2, enc_heads=4, dec_heads=4, enc_pf_dim=128,
                    dec_pf_dim=128, max_length=50)


def fairseq_model(**changes):
    return build_transformer(V, V, PAD, PAD, SMALL.replace(init="fairseq", **changes), seed=7)


def attention_layers(model):
    for side in (model.encoder, model.decoder):
        for layer in side.layers:
            yield layer.self_attention
            if hasattr(layer, "encoder_attention"):
                yield layer.encoder_attention


def test_fairseq_embeddings_are_normal_with_std_one_over_sqrt_d_and_a_zero_padding_row():
    model = fairseq_model()
    for table in (model.encoder.tok_embedding.weight.data, model.decoder.tok_embedding.weight.data,
                  model.encoder.pos_embedding.weight.data, model.decoder.fc_out.weight.data):
        rows = np.delete(table, PAD, axis=0) if table.shape[0] == V else table
        assert abs(rows.std() / D ** -0.5 - 1) < 0.05 and abs(rows.mean()) < 0.01
    assert not model.encoder.tok_embedding.weight.data[PAD].any()
    assert not model.decoder.tok_embedding.weight.data[PAD].any()
    assert not model.decoder.fc_out.bias.data.any()


def test_fairseq_attention_is_xavier_with_gain_one_over_sqrt_2_on_q_k_v_and_a_zero_output_bias():
    model = fairseq_model()
    xavier = math.sqrt(6 / (2 * D))                               # a square (D, D) weight's bound
    for attention in attention_layers(model):
        for fc, gain in ((attention.fc_q, 2 ** -0.5), (attention.fc_k, 2 ** -0.5),
                         (attention.fc_v, 2 ** -0.5), (attention.fc_o, 1.0)):
            w = fc.weight.data
            assert np.abs(w).max() <= gain * xavier
            assert abs(w.std() / (gain * xavier / math.sqrt(3)) - 1) < 0.1     # U(-a, a): std a/sqrt(3)
        assert not attention.fc_o.bias.data.any()
        assert attention.fc_q.bias.data.any()                                   # PyTorch's default kept


def test_fairseq_feed_forward_keeps_pytorchs_default_and_layer_norms_are_one_and_zero():
    model = fairseq_model()
    ff = model.encoder.layers[0].positionwise_feedforward
    for fc, fan_in in ((ff.fc_1, D), (ff.fc_2, 128)):
        bound = 1 / math.sqrt(fan_in)
        assert np.abs(fc.weight.data).max() <= bound and fc.weight.data.std() > 0.5 * bound / math.sqrt(3)
    norm = model.encoder.layers[0].layer_norm
    assert (norm.weight.data == 1).all() and not norm.bias.data.any()


def test_fairseq_init_ties_the_output_layer_to_the_normal_token_table():
    model = fairseq_model(tie_embeddings=True, share_vocab=True)
    shared = model.decoder.tok_embedding.weight
    assert model.decoder.fc_out.weight is shared and model.encoder.tok_embedding.weight is shared
    assert abs(np.delete(shared.data, PAD, axis=0).std() / D ** -0.5 - 1) < 0.05
    assert not shared.data[PAD].any()


def test_the_scheme_is_seeded_and_the_tutorial_default_is_unchanged():
    a, b = fairseq_model(), fairseq_model()
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(value, b.state_dict()[key], err_msg=key)
    tutorial = build_transformer(V, V, PAD, PAD, SMALL, seed=7)
    again = initialize_weights(build_transformer(V, V, PAD, PAD, SMALL, seed=0),
                               np.random.default_rng(7))                         # the old call
    for key, value in tutorial.state_dict().items():
        np.testing.assert_array_equal(value, again.state_dict()[key], err_msg=key)
    assert not np.array_equal(tutorial.encoder.tok_embedding.weight.data, a.encoder.tok_embedding.weight.data)
    with pytest.raises(ValueError, match="init must be one of tutorial, fairseq"):
        initialize_weights(tutorial, np.random.default_rng(0), "glorot")


def test_init_is_a_training_flag_and_a_saved_config_without_it_is_the_tutorials():
    from tinynmt.programs.train import build_parser
    assert "--init" in build_parser().format_help()
    saved = Config(hid_dim=D, enc_heads=4, dec_heads=4).to_dict()
    del saved["init"]                                           # a run saved before the flag
    assert Config.from_dict(saved).init == "tutorial"
