"""Layers, losses and the tutorial's Transformer, composed from autograd ops."""
from . import init
from .attention import MultiHeadAttentionLayer, PositionwiseFeedforwardLayer
from .layers import Dropout, Embedding, LayerNorm, Linear, SinusoidalPositions, set_dropout_generator
from .loss import CrossEntropyLoss, teacher_forced_logits, teacher_forced_loss
from .module import Module, ModuleList, Parameter
from .transformer import (Decoder, DecoderLayer, Encoder, EncoderLayer, ModelConfig, Seq2Seq, build_transformer, tie_embedding_weights)

__all__ = ["CrossEntropyLoss", "Decoder", "DecoderLayer", "Dropout", "Embedding",
           "Encoder", "EncoderLayer", "LayerNorm", "Linear", "ModelConfig", "Module", "ModuleList",
           "MultiHeadAttentionLayer", "Parameter", "PositionwiseFeedforwardLayer", "Seq2Seq",
           "SinusoidalPositions", "build_transformer", "init", "set_dropout_generator", "teacher_forced_logits",
           "teacher_forced_loss", "tie_embedding_weights"]
