"""The BiLSTM-CRF engine's network: embeddings + character CNN (+ hashed affixes) -> BiLSTM
-> tag scores -> a linear-chain CRF with IOB2 constraints (partition function, partial-label
loss, forward-backward, Viterbi, exact span marginals), and ensembles of such networks.
The tagger around it is :mod:`nerdata.engines.crf_engine`."""
from __future__ import annotations

from typing import Any, Sequence

from nerdata.errors import require
from nerdata.tags import allowed_transitions as scheme_transitions
from nerdata.tags import tag_names

PAD, UNK = 0, 1
NEG = -1.0e4  # log-score of a forbidden transition or tag (finite: no NaN in logsumexp)


def _torch():
    return require("torch", "train")


def iob2_tags(labels: Sequence[str]) -> list[str]:
    """Tag order of the CRF: ``O`` then ``B-X, I-X`` per label in label order
    (:func:`nerdata.tags.tag_names`)."""
    return tag_names(labels, "IOB2")


def allowed_transitions(tags: Sequence[str]) -> tuple[list[list[bool]], list[bool]]:
    """IOB2 constraints from the scheme's table (:func:`nerdata.tags.allowed_transitions`):
    ``ok[i][j]`` (tag i may be followed by tag j) and ``start_ok[j]``; IOB2 may end anywhere."""
    ok, start_ok, _end_ok = scheme_transitions(tags, "IOB2")
    return ok, start_ok


def build_network(n_words: int, n_chars: int, n_tags: int, o: dict[str, Any],
                  ok: list[list[bool]], start_ok: list[bool], *, members: int = 1,
                  nets: Sequence | None = None):
    """The PyTorch module: embeddings + char CNN (+ affixes) -> BiLSTM -> tag scores -> CRF.

    ``members > 1``: an ensemble of that many such networks (initialised one after the
    other from the current torch seed; ``nets``: already built ones) whose emissions and transition scores are averaged:
    one CRF over the mean potentials (a product of the members' distributions), so Viterbi,
    span and word marginals work on it unchanged."""
    torch = _torch()
    nn = torch.nn

    class Dropout(nn.Module):
        """Inverted dropout with its mask drawn by ``torch.rand`` (on CPU about three times
        as fast as the Bernoulli sampler ``nn.Dropout`` uses; the same distribution)."""

        def __init__(self, p: float) -> None:
            super().__init__()
            self.p = p

        def forward(self, x):
            if not self.training or not self.p:
                return x
            return x * (torch.rand_like(x) >= self.p).to(x.dtype) * (1.0 / (1.0 - self.p))

    class CRF(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trans = nn.Parameter(torch.zeros(n_tags, n_tags))  # trans[i, j]: i then j
            self.start = nn.Parameter(torch.zeros(n_tags))
            self.end = nn.Parameter(torch.zeros(n_tags))
            self.register_buffer("trans_bias", (~torch.tensor(ok)).float() * NEG)
            self.register_buffer("start_bias", (~torch.tensor(start_ok)).float() * NEG)

        def scores(self):
            return self.trans + self.trans_bias, self.start + self.start_bias, self.end

        def log_partition(self, em, mask):
            """log Z over every path (em: B x T x n, already restricted where needed): one
            loop over positions, batched over sentences."""
            trans, start, end = self.scores()
            alpha = start + em[:, 0]
            for t in range(1, em.shape[1]):
                nxt = torch.logsumexp(alpha.unsqueeze(2) + trans, 1) + em[:, t]
                alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
            return torch.logsumexp(alpha + end, 1)

        def path_score(self, em, tags, mask):
            """Score of one path per sentence (tags: B x T tag ids, padding ignored), by
            gather: emissions plus start, transition and end scores."""
            trans, start, end = self.scores()
            m = mask.to(em.dtype)
            s = (em.gather(2, tags.unsqueeze(2)).squeeze(2) * m).sum(1) + start[tags[:, 0]]
            if tags.shape[1] > 1:
                s = s + (trans[tags[:, :-1], tags[:, 1:]] * m[:, 1:]).sum(1)
            last = tags.gather(1, (mask.sum(1, keepdim=True) - 1).clamp(min=0)).squeeze(1)
            return s + end[last]

        def nll(self, em, allowed, mask):
            """-log P(allowed paths): log Z - log Z restricted to the allowed tags.  A
            sentence whose every token has one allowed tag (complete annotation) takes its
            gold path's score by gather; the others' restricted sums share the one forward
            pass of log Z (a batch extended by those sentences)."""
            B = em.shape[0]
            exact = (allowed.sum(2) == 1) | ~mask
            partial = (~exact.all(1)).nonzero().squeeze(1)
            if len(partial):
                z = self.log_partition(
                    torch.cat([em, em[partial].masked_fill(~allowed[partial], NEG)]),
                    torch.cat([mask, mask[partial]]))
                z, restricted = z[:B], z[B:]
            else:
                z = self.log_partition(em, mask)
            gold = self.path_score(em, allowed.to(torch.uint8).argmax(2), mask)
            if len(partial):
                gold = gold.index_put((partial,), restricted)
            return z - gold

        def forward_backward(self, em, mask):
            """alpha (B x T x n: log-sum of prefixes ending in each tag, emission included),
            beta (B x T x n: log-sum of the suffixes after each tag, end score included;
            padding positions hold the end scores) and log Z (B)."""
            trans, start, end = self.scores()
            B, T, n = em.shape
            alpha = [start + em[:, 0]]
            for t in range(1, T):
                nxt = torch.logsumexp(alpha[-1].unsqueeze(2) + trans, 1) + em[:, t]
                alpha.append(torch.where(mask[:, t].unsqueeze(1), nxt, alpha[-1]))
            beta = [end.expand(B, n)] * T
            for t in range(T - 2, -1, -1):
                nxt = torch.logsumexp(trans + (em[:, t + 1] + beta[t + 1]).unsqueeze(1), 2)
                beta[t] = torch.where(mask[:, t + 1].unsqueeze(1), nxt, end.expand(B, n))
            return (torch.stack(alpha, 1), torch.stack(beta, 1),
                    torch.logsumexp(alpha[-1] + end, 1))

        def viterbi(self, em, mask):
            """The best path of each sentence (a list of tag ids as long as the sentence):
            max-product forward pass and a backtrace batched over sentences."""
            trans, start, end = self.scores()
            B, T, _ = em.shape
            score = start + em[:, 0]
            back = []
            for t in range(1, T):
                best, idx = (score.unsqueeze(2) + trans).max(1)
                back.append(idx)
                score = torch.where(mask[:, t].unsqueeze(1), best + em[:, t], score)
            lengths = mask.sum(1)
            tag = (score + end).argmax(1)
            path = torch.zeros(B, T, dtype=torch.long)
            rows = torch.arange(B)
            for t in range(T - 1, -1, -1):
                here = lengths > t  # inside the sentence: the tag at t is known
                path[:, t] = torch.where(here, tag, path[:, t])
                if t:
                    tag = torch.where(here, back[t - 1][rows, tag], tag)
            return [p[:n] for p, n in zip(path.tolist(), lengths.tolist())]

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wemb = nn.Embedding(n_words, o["word_dim"], padding_idx=PAD)
            self.cemb = nn.Embedding(n_chars, o["char_dim"], padding_idx=PAD)
            self.conv = nn.Conv1d(o["char_dim"], o["char_filters"], o["char_window"],
                                  padding=o["char_window"] // 2)
            width = o["word_dim"] + o["char_filters"]
            if o["affix_dim"]:
                self.aemb = nn.EmbeddingBag(o["affix_rows"], o["affix_dim"], mode="sum",
                                            padding_idx=PAD)
                width += o["affix_dim"]
            self.drop = Dropout(0.5)
            self.lstm = nn.LSTM(width, o["hidden"], num_layers=o["lstm_layers"],
                                batch_first=True, bidirectional=True)
            self.out = nn.Linear(2 * o["hidden"], n_tags)
            self.crf = CRF()
            # the BiLSTM's arithmetic in training (None: float32; the training option
            # ``lstm_precision`` sets it for the run), never in evaluation or prediction
            self.lstm_dtype = None

        def emissions(self, words, chars, affixes=None, char_rows=None):
            """Tag scores, B x T x n.  Padding never reaches a real position: the char CNN
            pools over the word's own characters only and the BiLSTM's backward direction
            reads each sentence reversed within its own length (:func:`bilstm`), so a
            sentence's scores do not depend on its batch.  ``char_rows``: the batch's
            :func:`distinct_char_rows`, when the caller keeps them."""
            B, T, C = chars.shape
            # the CNN reads each distinct character row of the batch once (a word repeats
            # often within a batch; padding rows are one row)
            rows, inverse = char_rows if char_rows is not None else distinct_char_rows(chars)
            c = self.drop(self.cemb(rows)).transpose(1, 2)
            c = torch.relu(self.conv(c)).masked_fill((rows == PAD).unsqueeze(1), 0.0)
            c = c.max(2).values[inverse].view(B, T, -1)
            parts = [self.wemb(words), c]
            if affixes is not None:
                parts.append(self.aemb(affixes.view(B * T, -1)).view(B, T, -1))
            x = self.drop(torch.cat(parts, -1))
            if self.training and self.lstm_dtype is not None:  # training's LSTM arithmetic
                with torch.autocast("cpu", dtype=self.lstm_dtype):
                    h = bilstm(self.lstm, x, words != PAD).float()
            else:
                h = bilstm(self.lstm, x, words != PAD)
            return self.out(self.drop(h))

    class MeanCRF(CRF):
        """The CRF of an ensemble: its scores are the members' CRF scores averaged (it owns
        no parameters; the members' list is kept unregistered, so no state is saved twice,
        and a deep copy of the ensemble averages the copied members)."""

        def __init__(self, nets) -> None:
            nn.Module.__init__(self)
            self.__dict__["nets"] = nets

        def scores(self):
            each = [m.crf.scores() for m in self.nets]
            return tuple(torch.stack(x).mean(0) for x in zip(*each))

    class Ensemble(nn.Module):
        def __init__(self, nets) -> None:
            super().__init__()
            self.members = nn.ModuleList(nets)
            self.crf = MeanCRF(self.members)

        def emissions(self, words, chars, affixes=None):
            return torch.stack([m.emissions(words, chars, affixes) for m in self.members]).mean(0)

    if nets is not None:
        return Ensemble(nets)
    if members == 1:
        return Net()
    return Ensemble([Net() for _ in range(members)])


def distinct_char_rows(chars):
    """The distinct character rows of a B x T x C batch and each token's row among them
    (``torch.unique`` over rows): what the character CNN reads."""
    B, T, C = chars.shape
    return _torch().unique(chars.view(B * T, C), dim=0, return_inverse=True)


def bilstm(lstm, x, mask):
    """``lstm`` (a bidirectional, batch-first ``nn.LSTM``) over ``x`` (B x T x d) with
    padding after each sentence (``mask``: B x T, True on tokens); padding positions give 0.

    The same function as running ``lstm`` on packed sequences, computed on dense tensors,
    where torch's fused (oneDNN) kernels run about twice as fast on CPU: the forward
    direction reads the padded batch as it is (padding comes after every real token), the
    backward direction reads each sentence reversed within its own length."""
    torch = _torch()
    B, T, _ = x.shape
    steps = torch.arange(T, device=x.device)
    lengths = mask.sum(1, keepdim=True)
    # position t <-> length-1-t inside a sentence, padding in place: an involution
    flip = torch.where(steps < lengths, lengths - 1 - steps, steps)
    keep = mask.unsqueeze(2).to(x.dtype)
    for layer in range(lstm.num_layers):
        out = []
        for suffix in ("", "_reverse"):
            names = [f"{w}_l{layer}{suffix}" for w in ("weight_ih", "weight_hh", "bias_ih",
                                                       "bias_hh")]
            inp = x if not suffix else x.gather(1, flip.unsqueeze(2).expand_as(x))
            h0 = x.new_zeros(1, B, lstm.hidden_size)
            h = torch.lstm(inp, (h0, h0), [getattr(lstm, n) for n in names], True, 1, 0.0,
                           lstm.training, False, True)[0]
            out.append(h if not suffix else h.gather(1, flip.unsqueeze(2).expand_as(h)))
        x = torch.cat(out, 2) * keep
    return x


def members_of(net) -> list:
    """The single networks of ``net`` (itself, or an ensemble's members)."""
    return list(net.members) if hasattr(net, "members") else [net]


def span_marginals(crf, em, alpha, beta, log_z,
                   spans: Sequence[tuple[int, int, int, int]]) -> list[float]:
    """P(tokens i..j-1 are ``B I ... I`` and token j does not continue with ``I``) under the
    CRF, for each ``(i, j, b_index, i_index)``; ``em``, ``alpha``, ``beta``: one sentence's
    T x n emissions and forward/backward scores (``crf.forward_backward``), ``log_z`` its
    log partition."""
    torch = _torch()
    trans, _, end = (x.detach() for x in crf.scores())
    T = em.shape[0]
    out = []
    for i, j, b, inner in spans:
        s = alpha[i, b]
        last = b
        for t in range(i + 1, j):
            s = s + trans[last, inner] + em[t, inner]
            last = inner
        if j < T:
            nxt = trans[last] + em[j] + beta[j]
            nxt[inner] = NEG * 10
            s = s + torch.logsumexp(nxt, 0)
        else:
            s = s + end[last]
        out.append(min(1.0, float(torch.exp(s - log_z))))
    return out
