"""What changed between two releases: sentences and entities, per label and language.

Sentences are matched by id.  A matched sentence is *changed* when its tokens, entities
or masked tokens differ.  Entities of a changed sentence with the same tokens are
matched in order: same boundaries and label -> unchanged; same boundaries, other label
-> ``relabelled``; overlapping, same label -> ``boundary`` (moved); overlapping, other
label -> ``relabelled_and_boundary``; the rest are ``added`` or ``removed``.  When the
tokens themselves changed, entities are compared by (text, label) only.

Scales by hash partitioning: rows of both releases are spilled into partitions by id
(in a temporary directory) and each pair of partitions is compared in memory, so memory
is bounded by ``partition_rows`` whatever the release size.
"""
from __future__ import annotations

import hashlib
import pickle
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterator

from nerdata.progress import ProgressCallback
from nerdata.tags import tags_to_spans

ENTITY_KINDS = ("added", "removed", "relabelled", "boundary", "relabelled_and_boundary")
COLUMNS = ["id", "split", "lang", "tokens", "ner_tags", "ner_mask"]


class ReleaseDiff(dict):
    """The result of :func:`diff_releases` (a plain JSON-ready dict) with :meth:`to_frame`."""

    def to_frame(self, table: str = "sentences"):
        """``sentences`` (per language) or ``entities`` (per kind of change and label) as a
        pandas DataFrame (:func:`nerdata.frames.release_diff_frame`)."""
        from nerdata.frames import release_diff_frame

        return release_diff_frame(self, table)


def _records(root: Path, manifest: dict) -> Iterator[tuple[str, tuple]]:
    from nerdata.release.rows import iter_rows

    names = manifest["tagset"]["names"]
    files = [root / f for split in manifest["configs"]["all"].values() for f in split["files"]]
    for row in iter_rows(files, COLUMNS):
        tags = [names[t] for t in row["ner_tags"]]
        spans = tuple(tags_to_spans(tags, "IOB2", on_invalid="repair"))
        mask = tuple(i for i, m in enumerate(row["ner_mask"]) if m)
        yield row["id"], (row["split"], row["lang"], tuple(row["tokens"]), spans, mask)


def _partition(doc_id: str, parts: int) -> int:
    return int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=4).digest(), "big") % parts


class _Examples:
    """Up to ``k`` examples per kind, those with the smallest ids (deterministic)."""

    def __init__(self, k: int) -> None:
        self.k, self.items = k, defaultdict(list)

    def add(self, kind: str, doc_id: str, payload: dict) -> None:
        if self.k <= 0:
            return
        bucket = self.items[kind]
        bucket.append((doc_id, payload))
        if len(bucket) > 4 * self.k:
            bucket.sort(key=lambda x: x[0])
            del bucket[self.k:]

    def to_dict(self) -> dict:
        return {kind: [p for _, p in sorted(v, key=lambda x: x[0])[: self.k]]
                for kind, v in sorted(self.items.items())}


def _span_text(tokens: tuple, span: tuple) -> str:
    return " ".join(tokens[span[0]:span[1]])


def compare_entities(tokens: tuple, a: tuple, b: tuple) -> list[dict]:
    """Entity changes between span lists ``a`` and ``b`` over the same tokens."""
    common = set(a) & set(b)
    left = [s for s in sorted(a) if s not in common]
    right = [s for s in sorted(b) if s not in common]
    out: list[dict] = []

    def take(pred, kind: str) -> None:
        for sa in list(left):
            for sb in right:
                if pred(sa, sb):
                    left.remove(sa)
                    right.remove(sb)
                    out.append({"kind": kind, "from": sa[2], "to": sb[2], "a": [sa[0], sa[1]],
                                "b": [sb[0], sb[1]], "text_a": _span_text(tokens, sa),
                                "text_b": _span_text(tokens, sb)})
                    break

    overlap = lambda x, y: x[0] < y[1] and y[0] < x[1]  # noqa: E731
    take(lambda x, y: x[:2] == y[:2], "relabelled")
    take(lambda x, y: x[2] == y[2] and overlap(x, y), "boundary")
    take(lambda x, y: overlap(x, y), "relabelled_and_boundary")
    out += [{"kind": "removed", "from": s[2], "a": [s[0], s[1]], "text_a": _span_text(tokens, s)}
            for s in left]
    out += [{"kind": "added", "to": s[2], "b": [s[0], s[1]], "text_b": _span_text(tokens, s)}
            for s in right]
    return out


def _entity_bag(tokens: tuple, spans: tuple) -> Counter:
    return Counter((_span_text(tokens, s), s[2]) for s in spans)


class _Diff:
    def __init__(self, examples: int) -> None:
        self.sent = Counter()
        self.sent_lang: dict[str, Counter] = defaultdict(Counter)
        self.ent: dict[str, Counter] = {k: Counter() for k in ENTITY_KINDS}
        self.ent_lang: dict[str, dict[str, Counter]] = defaultdict(lambda: {k: Counter() for k in ENTITY_KINDS})
        self.in_added, self.in_removed = Counter(), Counter()
        self.examples = _Examples(examples)

    def added(self, doc_id: str, rec: tuple) -> None:
        self.sent["added"] += 1
        self.sent_lang[rec[1]]["added"] += 1
        self.in_added.update(s[2] for s in rec[3])
        self.examples.add("sentence_added", doc_id, {"id": doc_id, "lang": rec[1], "split": rec[0],
                                                     "text": " ".join(rec[2])})

    def removed(self, doc_id: str, rec: tuple) -> None:
        self.sent["removed"] += 1
        self.sent_lang[rec[1]]["removed"] += 1
        self.in_removed.update(s[2] for s in rec[3])
        self.examples.add("sentence_removed", doc_id, {"id": doc_id, "lang": rec[1],
                                                       "split": rec[0], "text": " ".join(rec[2])})

    def matched(self, doc_id: str, ra: tuple, rb: tuple) -> None:
        lang = rb[1]
        if ra[0] != rb[0]:
            self.sent["split_changed"] += 1
            self.examples.add("split_changed", doc_id, {"id": doc_id, "from": ra[0], "to": rb[0]})
        if ra[2:] == rb[2:]:
            self.sent["unchanged"] += 1
            return
        self.sent["changed"] += 1
        self.sent_lang[lang]["changed"] += 1
        reasons = []
        if ra[2] != rb[2]:
            reasons.append("tokens")
            self.sent["tokens_changed"] += 1
            bag_a, bag_b = _entity_bag(ra[2], ra[3]), _entity_bag(rb[2], rb[3])
            changes = [{"kind": "removed", "from": lab, "text_a": t}
                       for (t, lab), n in sorted((bag_a - bag_b).items()) for _ in range(n)]
            changes += [{"kind": "added", "to": lab, "text_b": t}
                        for (t, lab), n in sorted((bag_b - bag_a).items()) for _ in range(n)]
        else:
            changes = compare_entities(rb[2], ra[3], rb[3])
        if changes:
            reasons.append("entities")
            self.sent["entities_changed"] += 1
        if ra[4] != rb[4]:
            reasons.append("mask")
            self.sent["mask_changed"] += 1
        for ch in changes:
            kind = ch["kind"]
            key = ch.get("from") if kind in ("removed", "boundary") else ch.get("to")
            if kind in ("relabelled", "relabelled_and_boundary"):
                key = f"{ch['from']}->{ch['to']}"
            self.ent[kind][key] += 1
            self.ent_lang[lang][kind][key] += 1
            self.examples.add(f"entity_{kind}", doc_id, {"id": doc_id, "lang": lang, **ch})
        self.examples.add("sentence_changed", doc_id, {"id": doc_id, "lang": lang,
                                                       "reasons": reasons, "changes": changes})

    def result(self, a: dict, b: dict) -> "ReleaseDiff":
        sent = {k: self.sent[k] for k in ("added", "removed", "changed", "unchanged",
                                          "tokens_changed", "entities_changed", "mask_changed",
                                          "split_changed")}
        return ReleaseDiff({
            "a": a, "b": b, "sentences": sent,
            "sentences_by_lang": {lang: {k: c[k] for k in ("added", "removed", "changed")}
                                  for lang, c in sorted(self.sent_lang.items())},
            "entities": {k: dict(sorted(v.items())) for k, v in self.ent.items()},
            "entities_by_lang": {lang: {k: dict(sorted(v.items())) for k, v in d.items() if v}
                                 for lang, d in sorted(self.ent_lang.items())},
            "entities_in_added_sentences": dict(sorted(self.in_added.items())),
            "entities_in_removed_sentences": dict(sorted(self.in_removed.items())),
            "examples": self.examples.to_dict(),
        })


def _spill(records: Iterator[tuple[str, tuple]], parts: int, directory: Path, side: str,
           chunk: int = 5_000) -> list[Path]:
    paths = [directory / f"{side}-{k:04d}.pkl" for k in range(parts)]
    buffers: list[list] = [[] for _ in range(parts)]
    handles = [open(p, "wb") for p in paths]
    try:
        for doc_id, rec in records:
            k = _partition(doc_id, parts)
            buffers[k].append((doc_id, rec))
            if len(buffers[k]) >= chunk:
                pickle.dump(buffers[k], handles[k], protocol=pickle.HIGHEST_PROTOCOL)
                buffers[k] = []
        for k, buf in enumerate(buffers):
            if buf:
                pickle.dump(buf, handles[k], protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        for h in handles:
            h.close()
    return paths


def _unspill(path: Path) -> Iterator[tuple[str, tuple]]:
    with open(path, "rb") as fh:
        while True:
            try:
                yield from pickle.load(fh)
            except EOFError:
                return


def diff_releases(a: str | Path, b: str | Path, *, examples: int = 5,
                  partition_rows: int = 200_000,
                  progress: ProgressCallback | None = None) -> ReleaseDiff:
    """Compare release ``a`` (old) with ``b`` (new); returns a JSON-ready dict
    (:class:`ReleaseDiff`, with ``to_frame()``)."""
    from nerdata.release.store import read_manifest, resolve_release_dir

    ra, rb = resolve_release_dir(a), resolve_release_dir(b)
    ma, mb = read_manifest(ra), read_manifest(rb)
    info = lambda r, m: {"path": str(r), "name": m["name"], "version": m["version"],  # noqa: E731
                         "sentences": m["counts"]["totals"]["sentences"],
                         "tagset": f"{m['tagset']['name']}@{m['tagset']['version']}"}
    d = _Diff(examples)
    parts = max(1, -(-max(ma["counts"]["totals"]["sentences"],
                          mb["counts"]["totals"]["sentences"]) // partition_rows))
    with tempfile.TemporaryDirectory(prefix="nerdata-diff-") as tmp:
        if parts == 1:
            pairs = [(_records(ra, ma), lambda: _records(rb, mb))]
        else:
            pa = _spill(_records(ra, ma), parts, Path(tmp), "a")
            pb = _spill(_records(rb, mb), parts, Path(tmp), "b")
            pairs = [(_unspill(x), (lambda y=y: _unspill(y))) for x, y in zip(pa, pb)]
        for k, (left, right) in enumerate(pairs):
            old = dict(left)
            for doc_id, rec in right():
                prev = old.pop(doc_id, None)
                if prev is None:
                    d.added(doc_id, rec)
                else:
                    d.matched(doc_id, prev, rec)
            for doc_id, rec in old.items():
                d.removed(doc_id, rec)
            if progress is not None:
                progress(k + 1, len(pairs), "comparing")
    return d.result(info(ra, ma), info(rb, mb))


def format_diff(d: dict) -> str:
    """A human-readable report of :func:`diff_releases`."""
    a, b, s = d["a"], d["b"], d["sentences"]
    lines = [f"{a['name']} {a['version']} ({a['sentences']} sentences) -> "
             f"{b['name']} {b['version']} ({b['sentences']} sentences)", "",
             f"sentences: +{s['added']} added, -{s['removed']} removed, {s['changed']} changed "
             f"({s['tokens_changed']} tokens, {s['entities_changed']} entities, "
             f"{s['mask_changed']} mask), {s['unchanged']} unchanged"]
    if s["split_changed"]:
        lines.append(f"WARNING: {s['split_changed']} sentence(s) moved between splits")
    for lang, c in d["sentences_by_lang"].items():
        lines.append(f"  {lang}: +{c['added']} -{c['removed']} ~{c['changed']}")
    lines += ["", "entity changes in matched sentences:"]
    for kind in ENTITY_KINDS:
        counts = d["entities"][kind]
        total = sum(counts.values())
        detail = ", ".join(f"{k}={v}" for k, v in counts.items())
        lines.append(f"  {kind:<24}{total:>7}" + (f"  ({detail})" if detail else ""))
    for lang, kinds in d["entities_by_lang"].items():
        lines.append(f"  [{lang}] " + "; ".join(f"{k}: " + ", ".join(f"{x}={n}" for x, n in v.items())
                                               for k, v in kinds.items()))
    for title, key in (("entities in added sentences", "entities_in_added_sentences"),
                       ("entities in removed sentences", "entities_in_removed_sentences")):
        if d[key]:
            lines.append(f"{title}: " + ", ".join(f"{k}={v}" for k, v in d[key].items()))
    if d["examples"]:
        lines += ["", "examples:"]
        for kind, items in d["examples"].items():
            for ex in items:
                desc = ex.get("text") or ", ".join(
                    f"{c['kind']} {c.get('from', '')}{'->' if 'from' in c and 'to' in c else ''}"
                    f"{c.get('to', '')} {c.get('text_b', c.get('text_a', ''))!r}"
                    for c in ex.get("changes", [ex]))
                lines.append(f"  {kind} {ex['id']} [{ex.get('lang', '')}]: {desc}")
    return "\n".join(lines) + "\n"
