"""Benchmark: reading the shared labelled CoNLL/TSV corpora into documents, against a bare parser.

Measured in the same run on the same files:

* ``nerdata.corpora.readers.read_corpus_file`` -- documents with character offsets, lenient
  tag decoding through ``nerdata.tags``, unknown-type masking, GBK mojibake repair, NFC and a
  counted repair for every irregular line;
* the baseline: a bare CoNLL/TSV parser of the kind most projects write (``split`` lines,
  last column is the tag, blank line ends a sentence, tags kept as strings, no offsets, no
  repairs, no ``Document`` objects) -- the cost floor of reading these bytes in Python.

The ratio says what the repair-counting, offset-carrying reader costs over that floor.
Each side runs ``--repeat`` times; the best CPU time (``time.process_time``) is reported, so
other load on a shared machine inflates it less than wall time.

Run: ``.venv/bin/python bench/corpora_read.py`` (``--corpus masakhaner2`` for one corpus).
"""
from __future__ import annotations

import argparse
import time

from nerdata.corpora import corpus_files, get_card, list_cards
from nerdata.corpora.readers import read_corpus_file
from nerdata.repairs import RepairLog


def bare_parse(path, sep: str, tsv: bool) -> tuple[int, int]:
    """Sentences and tokens, the plain way."""
    sentences, tokens, cur, sid = 0, 0, [], None
    lines = path.read_text("utf-8-sig").splitlines()
    if tsv:
        lines = lines[1:]
    for line in lines:
        if not line.strip():
            if cur and not tsv:
                sentences += 1
                tokens += len(cur)
                cur = []
            continue
        fields = line.split(sep)
        if tsv and fields[-1] != sid:
            if cur:
                sentences += 1
                tokens += len(cur)
                cur = []
            sid = fields[-1]
        cur.append((fields[0], fields[1] if tsv else fields[-1]))
    if cur:
        sentences += 1
        tokens += len(cur)
    return sentences, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", action="append", help="corpus id (repeatable; default: every CoNLL/TSV corpus)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per side (best time is kept)")
    args = ap.parse_args()
    cards = [get_card(c) for c in args.corpus] if args.corpus else [
        c for c in list_cards() if c.reader in ("conll", "tsv")]
    files = [(c, f) for c in cards for f in corpus_files(c)]
    mb = sum(f.path.stat().st_size for _, f in files) / 1e6

    def ours() -> tuple[int, int]:
        s = t = 0
        for card, f in files:
            for d in read_corpus_file(card, f, RepairLog()):
                s += 1
                t += len(d.tokens)
        return s, t

    def base() -> tuple[int, int]:
        s = t = 0
        for card, f in files:
            a, b = bare_parse(f.path, card.reader_options.get("separator", "\t"), card.reader == "tsv")
            s, t = s + a, t + b
        return s, t

    results = {}
    for name, fn in (("bare parser (baseline)", base), ("nerdata reader", ours)):
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.process_time()
            counts = fn()
            best = min(best, time.process_time() - t0)
        results[name] = (best, counts)
        print(f"{name:24} {best:7.2f} CPU s  {mb / best:6.1f} MB/s  sentences={counts[0]} tokens={counts[1]}")
    ratio = results["nerdata reader"][0] / results["bare parser (baseline)"][0]
    print(f"{len(files)} files, {mb:.1f} MB; nerdata reader / bare parser time = {ratio:.2f}x")


if __name__ == "__main__":
    main()
