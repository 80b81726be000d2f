"""ModelConfig: the model's sizes declared once; build_transformer takes it, or a training
Config (which is one), and the flags, config.json keys and weights stay as they were."""
from dataclasses import fields

import numpy as np
import pytest

from tinynmt.training.config import Config, ConfigError
from tinynmt.programs.train import build_parser
from tinynmt.nn import ModelConfig, build_transformer

# Config's fields before ModelConfig existed: the flags and config.json keys that must stay
KEYS_BEFORE = ["src", "trg", "tokenizer", "bpe_merges", "lower", "share_vocab", "min_freq", "data_dir",
               "max_len", "test", "limit_train", "limit_eval", "hid_dim", "enc_layers", "dec_layers",
               "enc_heads", "dec_heads", "enc_pf_dim", "dec_pf_dim", "enc_dropout", "dec_dropout",
               "max_length", "tie_embeddings", "layer_norms", "lr", "batch_size", "max_tokens", "clip",
               "epochs", "max_steps", "schedule", "warmup", "label_smoothing", "weight_decay", "seed",
               "select_by", "patience", "average_last", "device", "out", "resume", "log_every",
               "save_every", "progress", "plot"]
# ModelConfig's fields and their defaults (the tutorial's), written out: Config must carry each
MODEL_FIELDS = {"hid_dim": 256, "enc_layers": 3, "dec_layers": 3, "enc_heads": 8, "dec_heads": 8,
                "enc_pf_dim": 512, "dec_pf_dim": 512, "enc_dropout": 0.1, "dec_dropout": 0.1,
                "max_length": 100, "positions": "learned", "share_vocab": False, "tie_embeddings": False,
                "layer_norms": "shared",
                "attention_dropout": None, "activation_dropout": None, "init": "tutorial"}
LIMITS = [(dict(hid_dim=30), "enc_heads=8 does not divide hid_dim=30"),
          (dict(dec_dropout=1.0), r"dec_dropout must be in \[0, 1\)"),
          (dict(enc_layers=0), "enc_layers must be a positive integer"),
          (dict(layer_norms="pre"), "unknown layer_norms 'pre'"),
          (dict(init="kaiming"), "init"),
          (dict(positions="rotary"), "unknown positions 'rotary'"),
          (dict(hid_dim="wide"), "hid_dim must be int")]
SMALL = dict(hid_dim=16, enc_layers=1, dec_layers=2, enc_heads=2, dec_heads=4, enc_pf_dim=8,
             dec_pf_dim=12, max_length=9)


def test_config_is_a_model_config_with_the_same_fields_and_keeps_every_key():
    assert issubclass(Config, ModelConfig)
    assert {f.name: f.default for f in fields(ModelConfig)} == MODEL_FIELDS
    config_defaults = {f.name: f.default for f in fields(Config)}
    assert {name: config_defaults[name] for name in MODEL_FIELDS} == MODEL_FIELDS
    for f in fields(Config):
        assert f.metadata["help"].strip(), f"{f.name} has no help line"
    for changes, message in LIMITS:                  # Config checks the model's limits as ModelConfig does
        with pytest.raises(ConfigError, match=message):
            Config(**changes)
    assert set(KEYS_BEFORE) <= set(Config().to_dict())
    help_text = build_parser().format_help()
    for name in KEYS_BEFORE:
        assert "--" + name.replace("_", "-") in help_text, name


def test_the_tutorial_defaults_and_limits_live_in_model_config():
    m = ModelConfig()
    assert (m.hid_dim, m.enc_layers, m.dec_layers, m.enc_heads, m.dec_heads) == (256, 3, 3, 8, 8)
    assert (m.enc_pf_dim, m.dec_pf_dim, m.enc_dropout, m.dec_dropout, m.max_length) == (512, 512, 0.1, 0.1, 100)
    assert (m.tie_embeddings, m.share_vocab, m.layer_norms) == (False, False, "shared")
    for changes, message in LIMITS:
        with pytest.raises(ConfigError, match=message):
            ModelConfig(**changes)
    assert ModelConfig(enc_dropout=0).enc_dropout == 0.0 and isinstance(ModelConfig(enc_dropout=0).enc_dropout, float)
    with pytest.raises(ConfigError, match="enc_heads=3 does not divide"):
        ModelConfig().replace(enc_heads=3)


def test_a_config_and_a_model_config_build_the_same_model():
    a = build_transformer(11, 13, 1, 1, ModelConfig(**SMALL), seed=5)
    b = build_transformer(11, 13, 1, 1, Config(**SMALL, epochs=2, lr=1e-3), seed=5)
    assert len(a.decoder.layers) == 2 and a.decoder.layers[0].positionwise_feedforward.fc_1.weight.shape == (12, 16)
    assert a.encoder.pos_embedding.weight.shape == (9, 16)
    assert list(a.state_dict()) == list(b.state_dict())
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(value, b.state_dict()[key], err_msg=key)


def test_no_config_is_the_tutorials_model():
    a, b = build_transformer(30, 40, 1, 1, seed=3), build_transformer(30, 40, 1, 1, ModelConfig(), seed=3)
    assert a.encoder.tok_embedding.weight.shape == (30, 256) and len(a.encoder.layers) == 3
    assert all(np.array_equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_tie_embeddings_and_share_vocab_tie_as_before():
    tied = build_transformer(11, 11, 1, 1, ModelConfig(**SMALL, tie_embeddings=True))
    assert tied.decoder.fc_out.weight is tied.decoder.tok_embedding.weight
    assert tied.encoder.tok_embedding.weight is not tied.decoder.tok_embedding.weight
    joint = build_transformer(11, 11, 1, 1, ModelConfig(**SMALL, tie_embeddings=True, share_vocab=True))
    assert joint.encoder.tok_embedding.weight is joint.decoder.fc_out.weight
    untied = build_transformer(11, 11, 1, 1, ModelConfig(**SMALL, share_vocab=True))   # a joint
    assert untied.decoder.fc_out.weight is not untied.decoder.tok_embedding.weight       # vocabulary alone
