"""Progressive / polyglot training versus single-language training (spaCy engine).

Baseline (measured in the same run): the target language trained alone from scratch on its
train split, early-stopped on its dev split.  Compared with, on the same test set:

* ``il-ner``: the progressive IL-NER plan (hin -> +urd -> +ory -> +tel, il-ner tagset, each
  stage continuing from the previous weights); target Telugu (the smallest language).
* ``masakhaner``: polyglot -> monolingual: one model on all ten MasakhaNER 1.0 languages,
  then fine-tuned on the target alone (luo and wol by default).  The polyglot stage is
  trained once and each target continues from its saved weights (``base_model``).

Everything runs through :func:`nerdata.workflows.training.run_plan`, so the stage x language F1 tables
(CSV) are written under ``--out``.  Prints target test F1, the difference and the ratio.

    python bench/progressive.py --configs masakhaner --targets luo
    python bench/progressive.py --configs il-ner --limit 3000     # cap sentences per language
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

MASAKHANER = ["amh", "hau", "ibo", "kin", "lug", "luo", "pcm", "swa", "wol", "yor"]
IL_PROGRESSION = ["hin", "urd", "ory", "tel"]


SMOKE: int | None = None  # --smoke N: every data entry capped at N documents


def _data(corpus, langs, limit):
    d = {"corpus": corpus, "langs": list(langs)}
    limit = SMOKE or limit
    if limit:
        d["limit"] = limit
    return d


def _run(raw: dict, out: Path):
    from nerdata.workflows.plans import parse_plan
    from nerdata.workflows.training import run_plan

    plan = parse_plan(raw, source=f"bench:{raw['name']}")
    t0 = time.perf_counter()
    res = run_plan(plan, output=out / raw["name"], overwrite=True)
    print(f"  [{raw['name']}] {time.perf_counter() - t0:.0f}s", flush=True)
    print("  " + res.table().replace("\n", "\n  "), flush=True)
    return res


def _test_f1(res, corpus, lang, stage=-1) -> float:
    for r in res.stages[stage].rows:
        if (r.corpus, r.lang, r.split) == (corpus, lang, "test"):
            return 100 * r.f1
    raise KeyError(f"{corpus}/{lang}/test not evaluated")


def _single(corpus, lang, tagset, args, out):
    return _run({"name": f"single-{corpus}-{lang}", "tagset": tagset, "seed": args.seed,
                 "model": json.loads(args.model_options), "training": {"patience": args.patience},
                 "evaluate": {"data": [_data(corpus, [lang], None)], "splits": ["test"]},
                 "stages": [{"name": lang, "epochs": args.epochs,
                             "data": [_data(corpus, [lang], None)]}]}, out)


def il_ner(args, out) -> list[tuple]:
    target = "tel"
    single = _single("il-ner", target, "il-ner", args, out)
    stages, so_far = [], []
    for lg in IL_PROGRESSION:
        so_far.append(lg)
        st = {"name": lg if len(so_far) == 1 else f"+{lg}",
              "epochs": args.epochs if lg == "hin" else args.stage_epochs,
              "data": [_data("il-ner", list(so_far), args.limit)]}
        if lg == target:
            st["dev"] = [{**_data("il-ner", [target], None), "splits": ["dev"]}]
        stages.append(st)
    prog = _run({"name": "il-ner-progressive", "tagset": "il-ner", "seed": args.seed,
                 "model": json.loads(args.model_options), "training": {"patience": args.patience},
                 "evaluate": {"data": [_data("il-ner", ["hin", "urd", "tel"], None)],
                              "splits": ["test"]},
                 "stages": stages}, out)
    return [("il-ner", target, "progressive hin->+urd->+ory->+tel",
             _test_f1(single, "il-ner", target), _test_f1(prog, "il-ner", target))]


def masakhaner(args, out) -> list[tuple]:
    rows = []
    poly = _run({"name": "masakhaner-polyglot", "tagset": "nerdata", "seed": args.seed,
                 "model": json.loads(args.model_options), "training": {"patience": args.patience},
                 "evaluate": {"data": [_data("masakhaner1", args.targets, None)],
                              "splits": ["test"]},
                 "stages": [{"name": "polyglot", "epochs": args.stage_epochs,
                             "data": [_data("masakhaner1", MASAKHANER, args.limit)]}]}, out)
    for target in args.targets:
        single = _single("masakhaner1", target, "nerdata", args, out)
        mono = _run({"name": f"polyglot-then-{target}", "tagset": "nerdata", "seed": args.seed,
                     "base_model": poly.final_model, "training": {"patience": args.patience},
                     "evaluate": {"data": [_data("masakhaner1", [target], None)],
                                  "splits": ["test"]},
                     "stages": [{"name": target, "epochs": args.epochs,
                                 "data": [_data("masakhaner1", [target], None)]}]}, out)
        rows.append(("masakhaner1", target, "polyglot only",
                     _test_f1(single, "masakhaner1", target), _test_f1(poly, "masakhaner1", target)))
        rows.append(("masakhaner1", target, "polyglot -> monolingual",
                     _test_f1(single, "masakhaner1", target), _test_f1(mono, "masakhaner1", target)))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", nargs="*", default=["il-ner", "masakhaner"],
                    choices=["il-ner", "masakhaner"])
    ap.add_argument("--targets", nargs="*", default=["luo", "wol"],
                    help="MasakhaNER targets for polyglot -> monolingual")
    ap.add_argument("--epochs", type=int, default=30,
                    help="epochs of single-language runs, the first IL-NER stage and the "
                         "monolingual fine-tuning")
    ap.add_argument("--stage-epochs", type=int, default=10,
                    help="epochs of the later progressive stages and of the polyglot stage")
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--limit", type=int, default=None,
                    help="training sentences per language in progressive/polyglot stages")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model-options", default="{}", help="spaCy engine model options (JSON)")
    ap.add_argument("--out", default=".work/spacy/progressive", help="where plan runs go")
    ap.add_argument("--smoke", type=int, default=None,
                    help="cap every data set at this many documents (a quick check of the script)")
    args = ap.parse_args(argv)
    global SMOKE
    SMOKE = args.smoke
    out = Path(args.out)
    rows = []
    if "masakhaner" in args.configs:
        rows += masakhaner(args, out)
    if "il-ner" in args.configs:
        rows += il_ner(args, out)
    print(f"\n{'target':18} {'method':36} {'single':>7} {'method':>7} {'diff':>6} {'ratio':>6}")
    for corpus, lang, method, single, other in rows:
        print(f"{corpus + '/' + lang:18} {method:36} {single:7.1f} {other:7.1f} "
              f"{other - single:+6.1f} {other / single if single else float('nan'):6.3f}")
    print(f"(test F1, strict spans; single = target alone from scratch; limit per language in "
          f"progressive/polyglot stages: {args.limit or 'none'})")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
