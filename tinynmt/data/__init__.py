"""tinynmt.data: Multi30k (or any parallel corpus), tokenizers, vocabularies, batches.

Pure Python/NumPy: no module here imports autograd. What a trainer calls:

    from tinynmt.data import load_dataset, PAD_IDX, SOS_IDX, EOS_IDX
    data = load_dataset(src="de", trg="en", tokenizer="whitespace", lower=True,
                        min_freq=2, max_len=100, data_dir=None)
    len(data.src_vocab), len(data.trg_vocab)          # 9,597 and 7,704 (tutorial setup)
    train = data.train.batches(batch_size=64, shuffle=True, seed=1234)
    for epoch in range(10):
        for batch in train.epoch(epoch):              # reproducible, resumable by epoch
            batch.src, batch.trg                      # (B, S), (B, T) np.int64, PAD_IDX-padded
            batch.n_trg_tokens, batch.n_pred_tokens   # non-pad trg ids; those trg[:, 1:]
    for batch in data.val.batches(): ...              # evaluation: sorted, never shuffled
    meta = {"tokenizer": data.tokenizer.to_dict(),
            "src_vocab": data.src_vocab.to_dict(), "trg_vocab": data.trg_vocab.to_dict()}  # JSON
    tokenizer = tokenizer_from_dict(meta["tokenizer"]); vocab = Vocab.from_dict(meta["src_vocab"])
    ids = encode_sentences([line], vocab, tokenizer=tokenizer)  # [[SOS_IDX, ..., EOS_IDX]]
    for batch in Batches(ids, batch_size=64): ...     # source only: batch.trg is None;
                                                      # batch.index maps rows back to lines

Your own corpus, prepared once (PREFIX.xx / PREFIX.yy files, any language labels):

    data = prepare_corpus("xx", "yy", train="corpus/train", valid="corpus/dev",
                          tests=["corpus/test"], options=PrepareOptions(tokenizer="bpe", bpe_merges=8000))
    save_prepared(data, "data/xx-yy"); data = load_prepared("data/xx-yy")   # ids memory-mapped
    data.train.batches(shuffle=True, seed=1234)       # the same Batches, from offsets arrays

Subwords: load_dataset(tokenizer="bpe", bpe_merges=10000) learns one byte-pair merge
table from the training split (source and target together); see bpe.py.

Modules: multi30k (files: where and how they are found, downloaded, verified),
textfile (read_lines, read_parallel), tokenize, bpe (BPETokenizer, learn_merges), vocab,
batching, dataset (load_dataset, load_parallel, build_dataset and the empty/long pair
policy), download (fetch); for prepared corpora: corpus (reading files once into chunk ids),
clean (Moses-style pair cleaning with counts), prepare (prepare_corpus), prepared
(PreparedData, packed splits and batches), prepare_io (the folder on disk).
Every bad input raises DataError with a one-line message; `python -m tinynmt.data`
prints it as `error: ...` and exits 2.
"""
from .batching import Batch, Batches, encode_sentences, pad_sequences
from .bpe import BPETokenizer, learn_merges
from .dataset import DataConfig, Split, TranslationData, build_dataset, load_dataset, load_parallel
from .errors import DataError
from .multi30k import LANGS, SPLITS, read_multi30k
from .encode_corpus import PrepareOptions, prepare_corpus
from .prepare_io import load_prepared, read_manifest, save_prepared
from .prepared import PackedBatches, PreparedData, PreparedSplit
from .textfile import read_lines, read_parallel
from .tokenize import Tokenizer, get_tokenizer, tokenizer_from_dict
from .vocab import EOS_IDX, PAD_IDX, SOS_IDX, SPECIALS, UNK_IDX, Vocab

__all__ = [
    "BPETokenizer", "Batch", "Batches", "DataConfig", "DataError", "EOS_IDX", "LANGS", "PAD_IDX", "SOS_IDX", "SPECIALS",
    "SPLITS", "PackedBatches", "PrepareOptions", "PreparedData", "PreparedSplit", "Split", "Tokenizer",
    "TranslationData", "UNK_IDX", "Vocab", "build_dataset", "encode_sentences", "get_tokenizer", "learn_merges",
    "load_dataset", "load_parallel", "load_prepared", "pad_sequences", "prepare_corpus", "read_lines",
    "read_manifest", "read_multi30k", "read_parallel", "save_prepared", "tokenizer_from_dict",
]
