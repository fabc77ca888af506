"""The published baseline's architecture, re-implemented, on our data and scoring.

``bench/quality.py`` compares the spaCy engine with the CNN-BiLSTM-CRF trained from scratch
in Adelani et al. (TACL 2021).  This script trains that architecture itself -- character
CNN (Ma & Hovy 2016) + word embeddings (random init) + BiLSTM + CRF, in PyTorch, on CPU --
on the same train/dev/test splits as the spaCy engine, with the same early stopping on dev F1
and the same strict span scorer (:func:`nerdata.metrics.evaluate`).  It separates the two
reasons the engine could trail the published figure: the architecture, or our data/scoring.

    python bench/reference_bilstm_crf.py --langs hau pcm --seed 0

Prints, per language: published figure, this re-implementation's test F1, dev F1, epochs.
A reference measurement, not an engine: nothing in ``nerdata`` uses it.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import PUBLISHED_CNN_BILSTM_CRF  # noqa: E402  (bench/quality.py: the figures compared)

def build(torch, n_words, n_chars, n_tags, a):
    nn = torch.nn

    class CRF(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.n = n
            self.trans = nn.Parameter(torch.zeros(n, n))  # trans[i, j]: from i to j
            self.start = nn.Parameter(torch.zeros(n))
            self.end = nn.Parameter(torch.zeros(n))

        def nll(self, em, tags, mask):  # em: B x T x n, mask: B x T bool
            B, T, _ = em.shape
            ar = torch.arange(B)
            score = self.start[tags[:, 0]] + em[ar, 0, tags[:, 0]]
            for t in range(1, T):
                m = mask[:, t]
                s = self.trans[tags[:, t - 1], tags[:, t]] + em[ar, t, tags[:, t]]
                score = score + s * m
            last = tags[ar, mask.sum(1) - 1]
            score = score + self.end[last]
            alpha = self.start + em[:, 0]
            for t in range(1, T):
                nxt = torch.logsumexp(alpha.unsqueeze(2) + self.trans + em[:, t].unsqueeze(1), 1)
                alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
            logz = torch.logsumexp(alpha + self.end, 1)
            return (logz - score).sum()

        def decode(self, em, mask):
            B, T, _ = em.shape
            score = self.start + em[:, 0]
            back = []
            for t in range(1, T):
                s = score.unsqueeze(2) + self.trans
                best, idx = s.max(1)
                nxt = best + em[:, t]
                back.append(idx)
                score = torch.where(mask[:, t].unsqueeze(1), nxt, score)
            score = score + self.end
            out = []
            lengths = mask.sum(1).tolist()
            for b in range(B):
                tag = int(score[b].argmax())
                path = [tag]
                for t in range(lengths[b] - 1, 0, -1):
                    tag = int(back[t - 1][b, tag])
                    path.append(tag)
                out.append(path[::-1])
            return out

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.wemb = nn.Embedding(n_words, a.word_dim, padding_idx=0)
            self.cemb = nn.Embedding(n_chars, a.char_dim, padding_idx=0)
            self.conv = nn.Conv1d(a.char_dim, a.char_filters, 3, padding=1)
            self.drop = nn.Dropout(a.dropout)
            self.lstm = nn.LSTM(a.word_dim + a.char_filters, a.hidden, batch_first=True,
                                bidirectional=True)
            self.out = nn.Linear(2 * a.hidden, n_tags)
            self.crf = CRF(n_tags)

        def emissions(self, words, chars):  # chars: B x T x C
            B, T, C = chars.shape
            c = self.drop(self.cemb(chars.view(B * T, C))).transpose(1, 2)
            c = torch.relu(self.conv(c)).max(2).values.view(B, T, -1)
            x = self.drop(torch.cat([self.wemb(words), c], -1))
            h, _ = self.lstm(x)
            return self.out(self.drop(h))

    return Net()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--langs", nargs="*", default=list(PUBLISHED_CNN_BILSTM_CRF))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--patience", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--word-dim", type=int, default=100)
    ap.add_argument("--char-dim", type=int, default=30)
    ap.add_argument("--char-filters", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--unk-singletons", type=float, default=0.5,
                    help="replace training words seen once by <unk> with this probability")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    import torch

    from nerdata.corpora import load_documents
    from nerdata.doc import Span
    from nerdata.metrics import evaluate
    from nerdata.tags import spans_to_tags, tags_to_spans

    print(f"{'lang':6} {'published':>9} {'bilstm-crf':>10} {'diff':>6} {'dev':>6} {'ep':>6} "
          f"{'train s':>8}", flush=True)
    for lang in a.langs:
        torch.manual_seed(a.seed)
        rng = random.Random(a.seed)
        split = {s: load_documents("masakhaner1", lang, s, map_to="nerdata", limit=a.limit)
                 for s in ("train", "dev", "test")}
        split = {s: [d for d in v if d.tokens] for s, v in split.items()}
        labels = sorted({sp.label for d in split["train"] for sp in d.spans})
        tags = ["O"] + [f"{p}-{lab}" for lab in labels for p in ("B", "I")]
        tix = {t: i for i, t in enumerate(tags)}
        wc = Counter(w.lower() for d in split["train"] for w in d.words)
        wix = {w: i + 2 for i, w in enumerate(sorted(wc))}  # 0 pad, 1 unk
        cc = Counter(ch for d in split["train"] for w in d.words for ch in w)
        cix = {ch: i + 2 for i, ch in enumerate(sorted(cc))}

        def tensors(docs, train=False):
            T = max(len(d.tokens) for d in docs)
            C = max(min(len(w), 30) for d in docs for w in d.words)
            W = torch.zeros(len(docs), T, dtype=torch.long)
            Ch = torch.zeros(len(docs), T, C, dtype=torch.long)
            Y = torch.zeros(len(docs), T, dtype=torch.long)
            M = torch.zeros(len(docs), T, dtype=torch.bool)
            for b, d in enumerate(docs):
                for t, w in enumerate(d.words):
                    lw = w.lower()
                    i = wix.get(lw, 1)
                    if train and wc[lw] == 1 and rng.random() < a.unk_singletons:
                        i = 1
                    W[b, t] = i
                    for k, ch in enumerate(w[:30]):
                        Ch[b, t, k] = cix.get(ch, 1)
                M[b, :len(d.tokens)] = True
                if train:
                    for t, tag in enumerate(spans_to_tags(d.token_spans(), len(d.tokens), "IOB2")):
                        Y[b, t] = tix[tag]
            return W, Ch, Y, M

        def predict(net, docs):
            net.eval()
            out = []
            with torch.no_grad():
                for i in range(0, len(docs), 64):
                    chunk = docs[i:i + 64]
                    W, Ch, _, M = tensors(chunk)
                    for d, path in zip(chunk, net.crf.decode(net.emissions(W, Ch), M)):
                        spans = tags_to_spans([tags[p] for p in path], "IOB2", on_invalid="keep")
                        out.append([Span(d.tokens[i].start, d.tokens[j - 1].end, lab)
                                    for i, j, lab in spans])
            return out

        net = build(torch, len(wix) + 2, len(cix) + 2, len(tags), a)
        opt = torch.optim.Adam(net.parameters(), lr=a.lr)
        best, best_state, best_ep, waited, ep_run = -1.0, None, 0, 0, 0
        t0 = time.perf_counter()
        train = sorted(split["train"], key=lambda d: len(d.tokens))
        batches = [train[i:i + a.batch_size] for i in range(0, len(train), a.batch_size)]
        for ep in range(1, a.epochs + 1):
            ep_run = ep
            net.train()
            rng.shuffle(batches)
            for batch in batches:
                W, Ch, Y, M = tensors(batch, train=True)
                loss = net.crf.nll(net.emissions(W, Ch), Y, M) / len(batch)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
            f1 = evaluate(split["dev"], predict(net, split["dev"])).micro.f1
            if f1 > best:
                best, best_ep, waited = f1, ep, 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                waited += 1
                if waited >= a.patience:
                    break
        seconds = time.perf_counter() - t0
        net.load_state_dict(best_state)
        test_f1 = 100 * evaluate(split["test"], predict(net, split["test"])).micro.f1
        pub = PUBLISHED_CNN_BILSTM_CRF.get(lang)
        print(f"{lang:6} {pub:9.1f} {test_f1:10.1f} {test_f1 - pub:+6.1f} {100 * best:6.1f} "
              f"{best_ep:>3}/{ep_run:<2} {seconds:8.0f}", flush=True)
        if a.json:
            with open(a.json, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"lang": lang, "seed": a.seed, "test_f1": test_f1,
                                     "dev_f1": 100 * best, "best_epoch": best_ep,
                                     "epochs_run": ep_run, "train_seconds": round(seconds, 1),
                                     "options": {k: v for k, v in vars(a).items()
                                                 if k not in ("langs", "json")}}) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
