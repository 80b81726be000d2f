"""Decoding timings: sentences per second, greedy and beam 5 (filled in once decoding lands)."""


def decode_timings(engine, runner, data, n_sentences):
    return {}
