"""``nerdata corpora list|info|stats|validate|convert``: the corpus catalogue on the command line."""
from __future__ import annotations

import sys

import click

from nerdata.corpora.writers import WRITE_FORMATS

from .common import (echo_json, emit, format_option, progress_bar, progress_option,
                     source_options, table, with_source_help)



def root_option(f):
    """``--root``: where the catalogue's corpus files are."""
    return click.option("--root", default=None, help="Corpora root (default: $NERDATA_CORPORA "
                        "or ../shared/corpora).")(f)


def lang_split_options(f):
    """``--lang`` and ``--split``: narrow SOURCE to one language and split."""
    f = click.option("--split", default=None, help="Only this split (train, dev, test; all: "
                     "every split, the default).")(f)
    return click.option("--lang", default=None, help="Only this language (ISO 639-3); "
                        "required with a bare corpus id.")(f)


def _card_ids() -> list[str]:
    from nerdata.corpora import list_cards

    return [c.id for c in list_cards()]


@click.group("corpora")
def corpora_group() -> None:
    """The corpus catalogue: list, describe, count, validate and convert corpora."""


FLAG_LEGEND = (("NC", "non-commercial use only"), ("SA", "share-alike: derived data keeps the licence"),
               ("hub-only", "not stored locally, read from the Hugging Face hub"),
               ("unlabelled", "raw text without entity labels"))


@corpora_group.command("list")
@format_option
def list_cmd(fmt: str) -> None:
    """List the catalogue's corpora: shipped cards and the user catalogue's
    ($NERDATA_CATALOGUE, default ~/.config/nerdata/catalogue)."""
    from nerdata.corpora import list_cards

    cards = list_cards()
    if fmt == "json":
        echo_json([{"id": c.id, "name": c.name, "languages": list(c.languages), "labelled": c.labelled,
                    "local": c.local, "tagset": c.tagset, "licence": c.licence.id,
                    "non_commercial": c.licence.non_commercial, "share_alike": c.licence.share_alike,
                    "hub": c.hub.id if c.hub else None, "catalogue": c.catalogue} for c in cards])
        return
    rows = [[c.id, c.licence.id,
             ",".join(f for f, on in (("NC", c.licence.non_commercial),
                                      ("SA", c.licence.share_alike), ("hub-only", not c.local),
                                      ("unlabelled", not c.labelled)) if on) or "-",
             " ".join(c.languages),
             "shipped" if c.catalogue == "shipped" else "user: " + c.catalogue] for c in cards]
    click.echo(table(rows, ["id", "licence", "flags", "languages", "catalogue"]))
    used = {f for r in rows for f in r[2].split(",")}
    legend = [f"{f} = {text}" for f, text in FLAG_LEGEND if f in used]
    if legend:
        click.echo("flags: " + "; ".join(legend) + " (details: nerdata corpora info ID)")


@corpora_group.command("add")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--id", "corpus_id", required=True, help="id of the new corpus (lowercase, e.g. my-ner)")
@click.option("--lang", required=True, help="ISO 639-3 code of the files' language")
@click.option("--format", "fmt", type=click.Choice(["conll", "text"]), default="conll",
              show_default=True, help="format of the files (checked against their content)")


@click.option("--tagset", default=None, help="tagset of the labels (required for conll), e.g. masakhaner")
@click.option("--script", default=None,
              help="ISO 15924 script (e.g. Latn) of a language the catalogue does not know yet")


@click.option("--name", default=None, help="the language's name (a new language) and the card's")
@click.option("--licence", default="unknown", show_default=True, help="licence of the data")
@click.option("--overwrite", is_flag=True, help="replace an earlier card with this id")
@click.option("--json", "as_json", is_flag=True, help="print the card as JSON")
def add_cmd(directory: str, corpus_id: str, lang: str, fmt: str, tagset: str | None,
            script: str | None, name: str | None, licence: str, overwrite: bool,
            as_json: bool) -> None:
    """Add your own corpus: DIRECTORY holds train/dev/test files (train.txt, ... or
    LANG/train.txt, ...).  Writes a card with checksums into the user catalogue
    ($NERDATA_CATALOGUE, default ~/.config/nerdata/catalogue); then ID/LANG:SPLIT works in
    every command like a shipped corpus."""
    from nerdata.corpora import add_corpus

    card, path = add_corpus(directory, corpus_id=corpus_id, lang=lang, format=fmt, tagset=tagset,
                            script=script, name=name, licence=licence, overwrite=overwrite)
    if as_json:
        echo_json(card)
        return
    click.echo(f"added {corpus_id} ({lang}; splits {', '.join(card['splits'])}) -> {path}")


@corpora_group.command("info")
@click.argument("corpus_id")
@root_option
@format_option
def info_cmd(corpus_id: str, root: str | None, fmt: str) -> None:
    """Show a corpus card and its local files."""
    from nerdata.corpora import corpus_files, get_card
    from nerdata.errors import NotFoundError

    card = get_card(corpus_id)
    data = card.to_dict()
    try:
        data["files"] = [{"lang": f.lang, "split": f.split, "path": str(f.path)}
                         for f in corpus_files(card, root=root)] if card.local else []
    except NotFoundError as exc:
        data["files_error"] = str(exc)
    if fmt == "json":
        echo_json(data)
        return
    import yaml

    click.echo(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100).rstrip())


@corpora_group.command("stats")
@click.argument("source")
@lang_split_options
@root_option
@format_option
@progress_option
@source_options
@with_source_help
def stats_cmd(source: str, lang: str | None, split: str | None, root: str | None, fmt: str,
              progress: bool, source_tagset: str | None, source_format: str | None) -> None:
    """Sentences, tokens, entities per type, scripts and repair counts per file of SOURCE."""
    from nerdata.corpora.stats import stats_for

    with progress_bar(progress) as cb:
        stats = stats_for(source, lang=lang, split=split, root=root, tagset=source_tagset,
                          format=source_format, progress=cb)
    emit([s.to_dict() for s in stats], fmt, _stats_table)


def _stats_table(rows: list[dict]) -> str:
    return table(rows, ["file", "sentences", "tokens", "entities", "masked", "scripts",
                        "repairs"])


@corpora_group.command("validate")
@click.argument("source", required=False)
@click.option("--all", "all_", is_flag=True, help="Validate every corpus of the catalogue.")
@root_option
@click.option("--no-checksums", is_flag=True, help="Skip comparing file checksums with the cards.")
@click.option("--examples", default=3, show_default=True, type=int,
              help="Examples per repair kind.")
@format_option
@progress_option
@source_options
@with_source_help
def validate_cmd(source: str | None, all_: bool, root: str | None, no_checksums: bool,
                 examples: int, fmt: str, progress: bool, source_tagset: str | None,
                 source_format: str | None) -> None:
    """Read SOURCE (or every catalogue corpus) and report every repair; exit 1 only on
    unrecoverable input."""
    from nerdata.corpora.stats import validate_for

    if bool(source) == all_:
        raise click.UsageError("give a SOURCE or --all (not both)")
    with progress_bar(progress) as cb:
        rep = validate_for(source, root=root, checksums=not no_checksums, max_examples=examples,
                           tagset=source_tagset, format=source_format, progress=cb)
    if fmt == "json":
        echo_json(rep.to_dict())
    else:
        for f in rep.files:
            rep_s = ", ".join(f"{k}={v}" for k, v in f["repairs"].items()) or "clean"
            click.echo(f"{f['file']}: {f['documents']} documents; {rep_s}")
            for kind, exs in f["examples"].items():
                for ex in exs[:examples]:
                    click.echo(f"    {ex}")
        for s in rep.skipped:
            click.echo(f"{s['corpus']}: skipped ({s['reason']})")
        click.echo("total: " + (", ".join(f"{k}={v}" for k, v in sorted(rep.totals.items())) or "clean"))
    if not rep.ok:
        click.echo(f"error: {len(rep.fatal)} unrecoverable input problem(s), first: {rep.fatal[0]}",
                   err=True)
        sys.exit(1)


@corpora_group.command("convert")
@click.argument("source")
@lang_split_options
@click.option("--to", "fmt", required=True, type=click.Choice(WRITE_FORMATS),
              help="output format")
@click.option("--map-to", default=None, help="map spans to this tagset first (e.g. nerdata)")
@click.option("--scheme", default="IOB2", type=click.Choice(["IOB2", "BIOES"]), show_default=True,
              help="tag scheme of CoNLL output")


@click.option("--limit", default=None, type=int, help="convert only the first N documents")
@click.option("--script", "unify_into", default=None, metavar="SCRIPT",
              help="write Brahmic text unified into this script (devanagari, bengali, gurmukhi, "
                   "gujarati, odia, tamil, telugu, kannada, malayalam): one character for one, "
                   "offsets unchanged, characters without a counterpart kept and counted; Urdu "
                   "is left as is")
@root_option
@click.option("--from-hub", is_flag=True, help="read from the card's Hugging Face dataset instead of local files")
@click.option("--allow-download", is_flag=True, help="permit the download that --from-hub needs")
@click.option("-o", "--output", required=True, help="output path (`-` = stdout for jsonl/conll)")
@progress_option
@source_options
@with_source_help
def convert_cmd(source: str, lang: str | None, split: str | None, fmt: str, map_to: str | None,
                scheme: str, limit: int | None, unify_into: str | None, root: str | None,
                from_hub: bool, allow_download: bool, output: str, progress: bool,
                source_tagset: str | None, source_format: str | None) -> None:
    """Write SOURCE (e.g. one language/split of a corpus) as JSONL, CoNLL, a spaCy DocBin or an
    HF dataset; with --script, a copy unified into one Brahmic script, for inspection."""
    from nerdata.corpora import get_card, parse_source, writers
    from nerdata.corpora.resolver import hub_read
    from nerdata.corpora.sources import Resolver

    writers.check_output(fmt, output)
    if unify_into:
        from nerdata.scripts import check_script

        unify_into = check_script(unify_into)  # refused before anything is read
    ref = parse_source(source, lang=lang, split=None if split == "all" else split, limit=limit,
                       tagset=source_tagset, format=source_format)
    card = get_card(str(ref.corpus)) if ref.kind == "catalogue" else None
    with progress_bar(progress and not from_hub) as cb:
        got = (hub_read(ref, map_to=map_to, allow_download=allow_download) if from_hub
               else Resolver(map_to, root=root).read(ref, progress=cb))
    docs, unified = got.documents, None
    if unify_into:
        unified = writers.unified_copy(docs, unify_into)
        docs = unified.documents
    n = writers.write_format(fmt, docs, output, scheme=scheme, where=ref.spec,
                             tagset=map_to or (card.tagset if card else source_tagset),
                             corpus=card.id if card else ref.spec, lang=ref.lang,
                             split=ref.split, **({"script": unify_into} if unify_into else {}))
    if unified is not None:
        click.echo(unified.summary(), err=True)
    repairs = ", ".join(f"{k}={v}" for k, v in sorted(got.repairs.counts.items())) or "none"
    click.echo(f"wrote {n} documents to {output} ({fmt}); repairs: {repairs}", err=True)
