"""Progressive training plans: YAML files read and validated into :class:`Plan` objects.

A plan names an engine, model options, a tagset, a seed, an output directory, the
evaluation sets and a list of stages; each stage trains on its data starting from the
previous stage's weights (see :mod:`nerdata.workflows.training` for the runner)::

    name: il-ner-progressive
    engine: bilstm-crf             # the default; spacy | transformers | bilstm-crf
    base_model: null               # transformers: hub id or local path (required)
    tagset: il-ner                 # default: nerdata (sources mapped with load_mapping)
    seed: 0
    output: runs/il-ner-progressive
    model: {width: 128}            # engine constructor options
    training: {patience: 5}        # engine train() options for every stage
    evaluate:
      splits: [dev, test]          # evaluated where the corpus has them
      data: [{corpus: il-ner, langs: [hin, urd, ory, tel]}]
    stages:
      - name: hin
        epochs: 30
        data: [{corpus: il-ner, langs: [hin]}]          # splits default [train]
      - name: +urd
        data: [{corpus: il-ner, langs: [urd]}]
        rehearsal: 0.5             # mix in earlier stages' data (all | N | RATIO); default none

A data entry is one of ``{source: SOURCE, tagset, format, langs, splits, limit}`` (any form
of the data-source grammar, :mod:`nerdata.corpora.sources`: ``CORPUS/LANG[:SPLIT]``, a CoNLL,
JSONL or text file, a directory of train/dev/test files, a release), ``{corpus, langs|lang,
splits, limit}``, ``{jsonl: PATH, tagset}`` (documents in our JSONL; ``tagset`` = their
tagset when it is not the plan's) or ``{release: PATH, langs, splits, limit}``.  A stage's
``dev`` defaults to the dev split of its corpus entries.  Every problem is a ConfigError
naming the file, the key path (``stages[1].data[0].langs[2]``), the value and the valid
options, with close matches for a mistyped name."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from nerdata.engines.registry import DEFAULT_ENGINE, ENGINES
from nerdata.errors import ConfigError, NerdataError, NotFoundError
from nerdata.sources import SourceRef, Sources, default_sources
from nerdata.suggest import unknown_name

TOP_KEYS = ("name", "description", "engine", "base_model", "tagset", "seed", "output", "model",
            "training", "evaluate", "stages")
STAGE_KEYS = ("name", "data", "dev", "epochs", "training", "rehearsal")
DATA_KEYS = {"source": ("source", "lang", "langs", "splits", "split", "limit", "tagset", "format"),
             "corpus": ("corpus", "lang", "langs", "splits", "split", "limit"),
             "jsonl": ("jsonl", "tagset", "limit"),
             "release": ("release", "lang", "langs", "splits", "split", "limit")}
EVAL_KEYS = ("splits", "data")
DEFAULT_EVAL_SPLITS = ("dev", "test")


@dataclass(frozen=True)
class Stage:
    name: str
    data: tuple[SourceRef, ...]
    dev: tuple[SourceRef, ...] | None  # None: dev splits of the corpus entries
    epochs: int
    training: Mapping[str, Any] = field(default_factory=dict)
    rehearsal: str | None = None  # all | N | RATIO of the earlier stages' data (None: none)


@dataclass(frozen=True)
class Plan:
    name: str
    engine: str
    tagset: str
    seed: int
    output: str
    stages: tuple[Stage, ...]
    evaluate: tuple[SourceRef, ...]  # corpus refs; splits = evaluation splits (where available)
    base_model: str | None = None
    model: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = "<plan>"

    def with_overrides(self, *, engine: str | None = None, epochs: int | None = None,
                       seed: int | None = None, base_model: str | None = None,
                       model: Mapping[str, Any] | None = None,
                       training: Mapping[str, Any] | None = None,
                       rehearsal: str | None = None, limit: int | None = None) -> "Plan":
        """This plan with command-line settings on top: ``epochs`` for every stage, options
        merged over the plan's, ``rehearsal`` (all | N | RATIO | none) for every stage that
        continues a model, ``limit`` capping every data, dev and evaluation entry's documents
        per language and split.  ``engine`` must be the plan's own."""
        from nerdata.workflows.rehearsal import parse_rehearsal

        if engine and engine != self.engine:
            raise ConfigError(f"--engine {engine} contradicts the plan's engine "
                              f"{self.engine!r}; edit the plan")
        cap = (lambda refs: refs if refs is None or limit is None else  # noqa: E731
               tuple(replace(r, limit=min(limit, r.limit or limit)) for r in refs))
        stages = tuple(replace(s, epochs=epochs or s.epochs, data=cap(s.data), dev=cap(s.dev))
                       for s in self.stages)
        if rehearsal:
            r = parse_rehearsal(rehearsal, "--rehearsal")
            stages = tuple(replace(s, rehearsal=None if r.kind == "none" else str(r))
                           if i or base_model or self.base_model else s
                           for i, s in enumerate(stages))
        return replace(self, stages=stages, seed=self.seed if seed is None else seed,
                       evaluate=cap(self.evaluate),
                       base_model=base_model or self.base_model,
                       model={**self.model, **(model or {})},
                       training={**self.training, **(training or {})})

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain data (what ``nerdata train --check`` prints)."""
        d = {**asdict(self), "model": dict(self.model), "training": dict(self.training)}
        for st in d["stages"]:
            st["training"] = dict(st["training"])
        return d


# ---------------------------------------------------------------------------- helpers
class _Ctx:
    def __init__(self, source: str, sources: Sources | None) -> None:
        self.source = source
        self._sources = sources

    @property
    def sources(self) -> Sources:
        if self._sources is None:
            self._sources = default_sources()
        return self._sources

    def fail(self, path: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path or 'top level'}: {msg}")

    def keys(self, obj: Any, valid: tuple[str, ...], path: str) -> Mapping[str, Any]:
        if not isinstance(obj, Mapping):
            raise self.fail(path, f"expected a mapping with keys {', '.join(valid)}, "
                                  f"got {type(obj).__name__} {obj!r}")
        for k in obj:
            if k not in valid:
                raise self.fail(f"{path}.{k}" if path else str(k),
                                f"unknown key {k!r}; valid keys: {', '.join(valid)}")
        return obj

    def str_list(self, obj: Mapping[str, Any], one: str, many: str, path: str) -> tuple[str, ...]:
        if one in obj and many in obj:
            raise self.fail(path, f"give either {one!r} or {many!r}, not both")
        val, key = ([obj[one]], one) if one in obj else (obj.get(many), many)
        if val is None:
            return ()
        if isinstance(val, str):
            val = [val]
        if not isinstance(val, list) or not all(isinstance(v, str) and v for v in val):
            raise self.fail(f"{path}.{key}", f"expected a list of names, got {val!r}")
        return tuple(val)

    def pos_int(self, val: Any, path: str, *, allow_none: bool = False) -> int | None:
        if val is None and allow_none:
            return None
        if isinstance(val, bool) or not isinstance(val, int) or val < 1:
            raise self.fail(path, f"expected a positive integer, got {val!r}")
        return val

    def mapping(self, val: Any, path: str) -> dict[str, Any]:
        if val is None:
            return {}
        if not isinstance(val, Mapping):
            raise self.fail(path, f"expected a mapping of options, got {val!r}")
        return dict(val)


def _card(ctx: _Ctx, corpus: str, path: str):
    try:
        return ctx.sources.corpus(corpus)
    except NerdataError:
        known = [c.id for c in ctx.sources.corpora() if c.labelled]
        raise ctx.fail(path, unknown_name(f"unknown corpus {corpus!r}", corpus, known, "labelled corpora")) from None


def _corpus_ref(ctx: _Ctx, obj: Mapping[str, Any], path: str, tagset: str,
                default_splits: tuple[str, ...], *, eval_set: bool = False) -> SourceRef:
    corpus = obj["corpus"]
    if not isinstance(corpus, str):
        raise ctx.fail(f"{path}.corpus", f"expected a corpus id, got {corpus!r}")
    card = _card(ctx, corpus, f"{path}.corpus")
    if not card.labelled:
        raise ctx.fail(f"{path}.corpus", f"corpus {corpus!r} is unlabelled text; NER training "
                                         f"and evaluation need a labelled corpus")
    if not card.local:
        raise ctx.fail(f"{path}.corpus", f"corpus {corpus!r} has no local files (hub only)")
    langs = _members(ctx, obj, path, "lang", "langs", tuple(card.languages), card.languages,
                     "language", corpus)
    splits = _members(ctx, obj, path, "split", "splits", default_splits, card.splits, "split",
                      corpus)
    for sp in () if eval_set else splits:
        for lang in langs:
            if sp not in card.splits_for(lang):
                a = card.absence(lang, sp)
                raise ctx.fail(f"{path}.{'split' if 'split' in obj else 'splits'}",
                               f"{corpus}/{lang} has no local split {sp!r} "
                               f"({a.reason if a else 'absent'}); its splits: "
                               f"{', '.join(card.splits_for(lang))}")
    _check_mapping(ctx, card.tagset, tagset, path)
    limit = ctx.pos_int(obj.get("limit"), f"{path}.limit", allow_none=True)
    return SourceRef.catalogue(corpus, langs, splits, limit=limit, where=f"{ctx.source}: {path}")


def _members(ctx: _Ctx, obj: Mapping, path: str, one, many, default, valid, noun, corpus):
    """The values of ``one``/``many`` in ``obj`` (else ``default``), each in ``valid``."""
    values = ctx.str_list(obj, one, many, path) or default
    for i, v in enumerate(values):
        if v not in valid:
            raise ctx.fail(f"{path}.{one}" if one in obj else f"{path}.{many}[{i}]", unknown_name(
                f"unknown {noun} {v!r} for corpus {corpus!r}", v, valid, "valid"))
    return values


def _check_mapping(ctx: _Ctx, source: str | None, target: str, path: str) -> None:
    from nerdata.tagsets import load_mapping

    if source is None:
        return
    try:
        load_mapping(source, target)
    except NerdataError as exc:
        raise ctx.fail(path, f"cannot map tagset {source!r} to the plan's tagset {target!r}: "
                             f"{exc}") from None


def _data_ref(ctx: _Ctx, obj: Any, path: str, tagset: str, base_dir: Path,
              default_splits: tuple[str, ...]) -> SourceRef:
    if not isinstance(obj, Mapping):
        raise ctx.fail(path, f"expected a data entry (a mapping with one of "
                             f"{', '.join(DATA_KEYS)}), got {obj!r}")
    kinds = [k for k in DATA_KEYS if k in obj]
    if len(kinds) != 1:
        raise ctx.fail(path, f"a data entry needs exactly one of {', '.join(DATA_KEYS)}; "
                             f"got keys {', '.join(map(str, obj)) or 'none'}")
    kind = kinds[0]
    ctx.keys(obj, DATA_KEYS[kind], path)
    if kind == "corpus":
        return _corpus_ref(ctx, obj, path, tagset, default_splits)
    if kind == "source":
        return _source_ref(ctx, obj, path, tagset, base_dir, default_splits)
    raw = obj[kind]
    if not isinstance(raw, str) or not raw:
        raise ctx.fail(f"{path}.{kind}", f"expected a path, got {raw!r}")
    p = Path(raw).expanduser()
    if not p.is_absolute():
        p = base_dir / p
    limit = ctx.pos_int(obj.get("limit"), f"{path}.limit", allow_none=True)
    if kind == "jsonl":
        if not p.is_file():
            raise ctx.fail(f"{path}.jsonl", f"file {str(p)!r} does not exist")
        src = obj.get("tagset")
        if src is not None:
            _check_mapping(ctx, str(src), tagset, f"{path}.tagset")
        return SourceRef("file", str(p), path=str(p), tagset=None if src is None else str(src),
                         format="jsonl", limit=limit, where=f"{ctx.source}: {path}")
    if not p.exists():
        raise ctx.fail(f"{path}.release", f"release {str(p)!r} does not exist")
    langs = ctx.str_list(obj, "lang", "langs", path)
    splits = ctx.str_list(obj, "split", "splits", path) or default_splits
    return SourceRef("release", str(p), path=str(p), langs=langs, splits=splits, limit=limit,
                     where=f"{ctx.source}: {path}")


def _source_ref(ctx: _Ctx, obj: Mapping[str, Any], path: str, tagset: str, base_dir: Path,
                default_splits: tuple[str, ...]) -> SourceRef:
    """``{source: SPEC}``: any form of the data-source grammar (a catalogue corpus, a CoNLL
    or JSONL file, a directory, a release, ls:PROJECT); relative paths against the plan."""
    spec = obj["source"]
    if not isinstance(spec, str) or not spec:
        raise ctx.fail(f"{path}.source", f"expected a data source (CORPUS/LANG[:SPLIT], a file, "
                                         f"a directory, a release), got {spec!r}")
    if (base_dir / spec).exists() and not Path(spec).is_absolute():
        spec = str(base_dir / spec)
    limit = ctx.pos_int(obj.get("limit"), f"{path}.limit", allow_none=True)
    src = obj.get("tagset")
    if src is not None:
        _check_mapping(ctx, str(src), tagset, f"{path}.tagset")
    try:
        ref = ctx.sources.parse(spec, tagset=None if src is None else str(src),
                                format=obj.get("format"), limit=limit, where=f"{ctx.source}: {path}")
    except NerdataError as exc:
        raise ctx.fail(f"{path}.source", str(exc)) from None
    langs = ctx.str_list(obj, "lang", "langs", path) or ref.langs
    splits = ctx.str_list(obj, "split", "splits", path) or ref.splits
    if ref.kind == "catalogue":
        return _corpus_ref(ctx, {"corpus": ref.corpus, "langs": list(langs),
                                 "splits": list(splits or default_splits),
                                 **({"limit": limit} if limit else {})}, path, tagset, default_splits)
    if ref.kind == "release":
        splits = splits or default_splits
    return replace(ref, langs=tuple(langs), splits=tuple(splits))


def _rehearsal(ctx: _Ctx, val: Any, path: str, *, first: bool) -> str | None:
    """A stage's ``rehearsal:`` (all | N | RATIO); stages rehearse only when they say so."""
    from nerdata.workflows.rehearsal import REHEARSAL_HELP, parse_rehearsal

    if val is None:
        return None
    try:
        r = parse_rehearsal(val)
    except ConfigError:
        raise ctx.fail(path, f"expected {REHEARSAL_HELP}, got {val!r}") from None
    if r.kind == "none":
        return None
    if first:
        raise ctx.fail(path, "the first stage has nothing to rehearse: it continues no model "
                             "(set base_model to a saved model, or drop rehearsal)")
    return str(r)


def _data_list(ctx: _Ctx, val: Any, path: str, tagset: str, base_dir: Path,
               default_splits: tuple[str, ...]) -> tuple[SourceRef, ...]:
    if isinstance(val, Mapping):
        val = [val]
    if not isinstance(val, list) or not val:
        raise ctx.fail(path, f"expected a non-empty list of data entries, got {val!r}")
    return tuple(_data_ref(ctx, v, f"{path}[{i}]", tagset, base_dir, default_splits)
                 for i, v in enumerate(val))


# ---------------------------------------------------------------------------- parsing
def parse_plan(data: Any, *, source: str = "<plan>", base_dir: str | Path = ".",
               sources: Sources | None = None) -> Plan:
    """Validate a plan given as a mapping (``source`` names it in errors); catalogue entries
    are checked against ``sources`` (default: the registered data-source resolver)."""
    from nerdata.tagsets import list_tagsets, load_tagset

    ctx = _Ctx(source, sources)
    base = Path(base_dir)
    top = ctx.keys(data, TOP_KEYS, "")
    for req in ("name", "stages"):
        if req not in top:
            raise ctx.fail("", f"missing required key {req!r}")
    name = top["name"]
    if not isinstance(name, str) or not name.strip():
        raise ctx.fail("name", f"expected a non-empty string, got {name!r}")
    engine = top.get("engine", DEFAULT_ENGINE)
    if engine not in ENGINES:
        raise ctx.fail("engine", f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    base_model = top.get("base_model")
    if base_model is not None and not isinstance(base_model, str):
        raise ctx.fail("base_model", f"expected a hub id or a path, got {base_model!r}")
    if engine == "transformers" and not base_model:
        raise ctx.fail("base_model", "engine 'transformers' needs base_model: a hub id "
                                     "(e.g. Davlan/afro-xlmr-base) or a local checkpoint path")
    tagset = top.get("tagset", "nerdata")
    try:
        load_tagset(str(tagset))
    except NerdataError:
        raise ctx.fail("tagset", unknown_name(f"unknown tagset {tagset!r}", str(tagset),
                                              list_tagsets(), "valid")) from None
    tagset = str(tagset)
    seed = top.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ctx.fail("seed", f"expected a non-negative integer, got {seed!r}")
    output = top.get("output", f"runs/{name}")
    if not isinstance(output, str) or not output:
        raise ctx.fail("output", f"expected a directory path, got {output!r}")
    model = ctx.mapping(top.get("model"), "model")
    training = ctx.mapping(top.get("training"), "training")

    raw_stages = top["stages"]
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ctx.fail("stages", f"expected a non-empty list of stages, got {raw_stages!r}")
    stages, seen = [], set()
    for i, st in enumerate(raw_stages):
        path = f"stages[{i}]"
        st = ctx.keys(st, STAGE_KEYS, path)
        if "data" not in st:
            raise ctx.fail(path, "missing required key 'data'")
        sname = str(st.get("name", f"stage{i + 1}"))
        if sname in seen:
            raise ctx.fail(f"{path}.name", f"duplicate stage name {sname!r}")
        seen.add(sname)
        data = _data_list(ctx, st["data"], f"{path}.data", tagset, base, ("train",))
        dev = None
        if st.get("dev") is not None:
            dev = _data_list(ctx, st["dev"], f"{path}.dev", tagset, base, ("dev",))
        epochs = ctx.pos_int(st.get("epochs", 10), f"{path}.epochs")
        rehearsal = _rehearsal(ctx, st.get("rehearsal"), f"{path}.rehearsal",
                               first=not stages and not base_model)
        stages.append(Stage(sname, data, dev, int(epochs or 10),
                            ctx.mapping(st.get("training"), f"{path}.training"), rehearsal))

    ev = ctx.keys(top.get("evaluate") or {}, EVAL_KEYS, "evaluate")
    splits = ctx.str_list(ev, "split", "splits", "evaluate") or DEFAULT_EVAL_SPLITS
    if ev.get("data") is not None:
        raw = ev["data"] if isinstance(ev["data"], list) else [ev["data"]]
        evals = []
        for i, obj in enumerate(raw):
            p = f"evaluate.data[{i}]"
            is_source = isinstance(obj, Mapping) and "source" in obj
            ctx.keys(obj, ("source", "lang", "langs", "limit", "tagset", "format") if is_source
                     else ("corpus", "lang", "langs", "limit"), p)
            if ("corpus" in obj) == ("source" in obj):
                raise ctx.fail(p, "an evaluation entry needs 'corpus' or 'source' (and "
                                  "optionally 'langs')")
            if "source" in obj:
                evals.append(_source_ref(ctx, {**obj, "splits": list(splits)}, p, tagset,
                                         base, splits))
                continue
            evals.append(_corpus_ref(ctx, {**obj, "splits": list(splits)}, p, tagset, splits,
                                     eval_set=True))
        evaluate = tuple(evals)
    else:  # every (corpus, language) trained on
        pairs: dict[str, list[str]] = {}
        for s in stages:
            for r in s.data:
                if r.kind == "catalogue":
                    pairs.setdefault(r.corpus, [])
                    pairs[r.corpus] += [lg for lg in r.langs if lg not in pairs[r.corpus]]
        evaluate = tuple(SourceRef.catalogue(c, lgs, splits, where=f"{source}: evaluate (default)")
                         for c, lgs in pairs.items())
    return Plan(name.strip(), engine, tagset, seed, output, tuple(stages), evaluate,
                base_model, model, training, str(top.get("description", "")), source)


def load_plan(path: str | Path, sources: Sources | None = None) -> Plan:
    """Read and validate a plan YAML file (relative data paths resolve against its folder)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"plan file {str(p)!r} does not exist; see the examples in "
                            f"{Path(__file__).parent / 'plans'} ('nerdata train --list-plans')")
    try:
        data = yaml.safe_load(p.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    return parse_plan(data, source=str(p), base_dir=p.parent, sources=sources)


def example_plans() -> dict[str, Path]:
    """The plans shipped in ``nerdata/workflows/plans/`` by name."""
    folder = Path(__file__).parent / "plans"
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def find_plan(value: str) -> Path:
    """A plan file: ``value`` when it exists, else the shipped plan of that name."""
    shipped = example_plans()
    if not Path(value).exists() and value not in shipped:
        raise NotFoundError(f"plan {value!r}: no such file and no shipped plan of that name; "
                            f"shipped plans: {', '.join(shipped)}")
    return Path(value) if Path(value).exists() else shipped[value]


def _slug_name(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "data"


def simple_plan(corpus: str, langs: list[str] | tuple[str, ...], *, engine: str = DEFAULT_ENGINE,
                epochs: int = 30, output: str | None = None, tagset: str = "nerdata",
                base_model: str | None = None, seed: int = 0,
                model: Mapping[str, Any] | None = None,
                training: Mapping[str, Any] | None = None, limit: int | None = None,
                rehearsal: str | None = None, sources: Sources | None = None) -> Plan:
    """One stage: train on ``corpus`` x ``langs`` (train split), evaluate on their dev/test
    (``rehearsal``: mix in the data ``base_model`` learnt from).

    ``corpus`` is a catalogue id (``ID`` with ``langs``, or ``ID/LANG``) or any other data
    source (a directory of train/dev/test files, a CoNLL or JSONL file, a release): its
    train split is trained on (the whole file when it has no splits), its dev split is the
    early-stopping set and its dev/test splits are evaluated, where it has them."""
    ref = (sources if sources is not None else default_sources()).parse(corpus)
    lim = {"limit": limit} if limit is not None else {}
    dev = None
    if ref.kind == "catalogue":
        langs = list(langs) or list(ref.langs)
        if not langs:
            raise ConfigError(f"training on corpus {ref.corpus!r} needs at least one language "
                              f"(--lang L, or {ref.corpus}/L)")
        data: dict[str, Any] = {"corpus": ref.corpus, "langs": list(langs), **lim}
        evaluate = [{"corpus": ref.corpus, "langs": list(langs), **lim}]
        name = f"{ref.corpus}-{'-'.join(langs)}"
    else:
        split = {"split": "train"} if ref.kind in ("directory", "release") else {}
        lg = {"langs": list(langs)} if langs else {}
        data = {"source": corpus, **split, **lg, **lim}
        evaluate = [{"source": corpus, **lg, **lim}] if split else []
        if split:
            dev = [{"source": corpus, "split": "dev", **lg, **lim}]
        name = _slug_name(Path(str(ref.path or corpus)).name) + (f"-{'-'.join(langs)}" if langs else "")
    raw = {"name": name, "engine": engine, "tagset": tagset, "seed": seed,
           "output": output or f"runs/{name}", "model": dict(model or {}),
           "training": dict(training or {}),
           "stages": [{"name": "+".join(langs) or "data", "epochs": epochs, "data": [data],
                       **({"dev": dev} if dev else {}),
                       **({"rehearsal": rehearsal} if rehearsal else {})}]}
    if base_model:
        raw["base_model"] = base_model
    if limit is not None or ref.kind != "catalogue":
        raw["evaluate"] = {"data": evaluate}
    return parse_plan(raw, source="command line", sources=sources)
