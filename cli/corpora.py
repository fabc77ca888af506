"""``nerdata corpora list|info|stats|validate|convert``: the corpus catalogue on the command line."""
from __future__ import annotations

import sys

import click

from .common import echo_json, progress_bar

FORMATS = ("jsonl", "conll", "spacy", "hf")


def _card_ids() -> list[str]:
    from nerdata.corpora import list_cards

    return [c.id for c in list_cards()]


@click.group("corpora")
def corpora_group() -> None:
    """The corpus catalogue: list, describe, count, validate and convert corpora."""


@corpora_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def list_cmd(as_json: bool) -> None:
    """List the catalogue's corpora."""
    from nerdata.corpora import list_cards

    cards = list_cards()
    if as_json:
        echo_json([{"id": c.id, "name": c.name, "languages": list(c.languages), "labelled": c.labelled,
                    "local": c.local, "tagset": c.tagset, "licence": c.licence.id,
                    "non_commercial": c.licence.non_commercial, "share_alike": c.licence.share_alike,
                    "hub": c.hub.id if c.hub else None} for c in cards])
        return
    for c in cards:
        flags = ",".join(f for f, on in (("NC", c.licence.non_commercial), ("SA", c.licence.share_alike),
                                         ("hub-only", not c.local), ("unlabelled", not c.labelled)) if on)
        click.echo(f"{c.id:22} {c.licence.id:16} {flags or '-':12} {' '.join(c.languages)}")


@corpora_group.command("info")
@click.argument("corpus_id")
@click.option("--root", default=None, help="corpora root (default: $NERDATA_CORPORA or ../shared/corpora)")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of YAML-like text")
def info_cmd(corpus_id: str, root: str | None, as_json: bool) -> None:
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
    if as_json:
        echo_json(data)
        return
    import yaml

    click.echo(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100).rstrip())


@corpora_group.command("stats")
@click.argument("corpus_id")
@click.option("--lang", default=None, help="only this language (ISO 639-3)")
@click.option("--split", default=None, help="only this split (train, dev, test, all)")
@click.option("--root", default=None, help="corpora root (default: $NERDATA_CORPORA or ../shared/corpora)")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--quiet", is_flag=True, help="no progress bar")
def stats_cmd(corpus_id: str, lang: str | None, split: str | None, root: str | None, as_json: bool,
              quiet: bool) -> None:
    """Sentences, tokens, entities per type, scripts and repair counts per file."""
    from nerdata.corpora import corpus_stats

    with progress_bar(not quiet) as cb:
        stats = corpus_stats(corpus_id, lang, split, root=root, progress=cb)
    if as_json:
        echo_json([s.to_dict() for s in stats])
        return
    for s in stats:
        d = s.to_dict()
        click.echo(f"{d['file']}: {d['sentences']} sentences, {d['tokens']} tokens")
        click.echo("  entities: " + (", ".join(f"{k}={v}" for k, v in d["entities"].items()) or "-"))
        if d["masked"]:
            click.echo("  masked:   " + ", ".join(f"{k}={v}" for k, v in d["masked"].items()))
        click.echo("  scripts:  " + ", ".join(f"{k}={v}" for k, v in d["scripts"].items()))
        click.echo("  repairs:  " + (", ".join(f"{k}={v}" for k, v in d["repairs"].items()) or "none"))


@corpora_group.command("validate")
@click.argument("corpus_id", required=False)
@click.option("--all", "all_", is_flag=True, help="validate every corpus of the catalogue")
@click.option("--root", default=None, help="corpora root (default: $NERDATA_CORPORA or ../shared/corpora)")
@click.option("--no-checksums", is_flag=True, help="skip comparing file checksums with the cards")
@click.option("--examples", default=3, show_default=True, type=int, help="examples per repair kind")
@click.option("--json", "as_json", is_flag=True, help="print the full report as JSON")
@click.option("--quiet", is_flag=True, help="no progress bar")
def validate_cmd(corpus_id: str | None, all_: bool, root: str | None, no_checksums: bool, examples: int,
                 as_json: bool, quiet: bool) -> None:
    """Read corpora and report every repair; exit 1 only on unrecoverable input."""
    from nerdata.corpora import validate_corpora

    if bool(corpus_id) == all_:
        raise click.UsageError("give a corpus id or --all (not both)")
    with progress_bar(not quiet) as cb:
        rep = validate_corpora(None if all_ else [corpus_id], root=root, checksums=not no_checksums,
                               max_examples=examples, progress=cb)
    if as_json:
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
@click.argument("corpus_id")
@click.option("--lang", required=True, help="language (ISO 639-3)")
@click.option("--split", required=True, help="split (train, dev, test, all)")
@click.option("--to", "fmt", required=True, type=click.Choice(FORMATS), help="output format")
@click.option("--map-to", default=None, help="map spans to this tagset first (e.g. nerdata)")
@click.option("--scheme", default="IOB2", type=click.Choice(["IOB2", "BIOES"]), show_default=True,
              help="tag scheme of CoNLL output")
@click.option("--limit", default=None, type=int, help="convert only the first N documents")
@click.option("--root", default=None, help="corpora root (default: $NERDATA_CORPORA or ../shared/corpora)")
@click.option("--from-hub", is_flag=True, help="read from the card's Hugging Face dataset instead of local files")
@click.option("--allow-download", is_flag=True, help="permit the download that --from-hub needs")
@click.option("-o", "--output", required=True, help="output path (`-` = stdout for jsonl/conll)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def convert_cmd(corpus_id: str, lang: str, split: str, fmt: str, map_to: str | None, scheme: str,
                limit: int | None, root: str | None, from_hub: bool, allow_download: bool, output: str,
                quiet: bool) -> None:
    """Write one language/split of a corpus as JSONL, CoNLL, a spaCy DocBin or an HF dataset."""
    from nerdata.corpora import get_card, load_documents, load_from_hub
    from nerdata.corpora import writers
    from nerdata.errors import ConfigError
    from nerdata.repairs import RepairLog

    card = get_card(corpus_id)
    if output == "-" and fmt in ("spacy", "hf"):
        raise ConfigError(f"--to {fmt} writes files; give a path with -o")
    log = RepairLog()
    if from_hub:
        docs = load_from_hub(card, lang, split, allow_download=allow_download, repairs=log,
                             map_to=map_to, limit=limit)
    else:
        with progress_bar(not quiet) as cb:
            docs = load_documents(card, lang, split, root=root, repairs=log, map_to=map_to, limit=limit,
                                  progress=cb)
    if fmt == "jsonl":
        n = writers.write_jsonl(docs, output, corpus=card.id, lang=lang, split=split,
                                tagset=map_to or card.tagset)
    elif fmt == "conll":
        n = writers.write_conll(docs, output, scheme=scheme)
    elif fmt == "spacy":
        n = writers.write_spacy(docs, output)
    else:
        tagset = map_to or card.tagset
        if tagset is None:
            raise ConfigError(f"corpus {card.id!r} is unlabelled; --to hf needs labels")
        n = writers.write_hf(docs, output, tagset)
    repairs = ", ".join(f"{k}={v}" for k, v in sorted(log.counts.items())) or "none"
    click.echo(f"wrote {n} documents to {output} ({fmt}); repairs: {repairs}", err=True)


def register(cli: click.Group) -> None:
    cli.add_command(corpora_group)
