"""The dataset card (``README.md``) of a release, in the Hugging Face Hub format.

A YAML header (language, license, task categories, ``configs`` with each config's
``data_files`` per split, ``dataset_info`` with the features and split sizes) followed by
statistics tables, the sources and their licences, provenance and agreement.  The card
holds no creation time, so identical inputs give an identical card (the time lives only
in ``manifest.json``).
"""
from __future__ import annotations

from typing import Any, Mapping

from nerdata.release.rows import COLUMN_DOCS, MASK_DOC, RESERVED_CONFIG, SPLITS

SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                   (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"))


def size_category(n: int) -> str:
    for limit, name in SIZE_CATEGORIES:
        if n < limit:
            return name
    return "10M<n<100M"


def data_files_pattern(config: str, split: str) -> str:
    folder = "*" if config == RESERVED_CONFIG else config
    return f"data/{folder}/{split}-*.parquet"


def card_header(manifest: Mapping[str, Any], features) -> dict[str, Any]:
    """The YAML header as a dict (see :func:`render_card`)."""
    from datasets.info import DatasetInfo
    from datasets.splits import SplitDict, SplitInfo

    langs = sorted(manifest["counts"]["langs"])
    lic = manifest["licence"]
    header: dict[str, Any] = {
        "pretty_name": f"{manifest['name']} {manifest['version']}",
        "language": langs,
        "license": lic["licence"],
        "task_categories": ["token-classification"],
        "task_ids": ["named-entity-recognition"],
        "multilinguality": "multilingual" if len(langs) > 1 else "monolingual",
        "size_categories": [size_category(manifest["counts"]["totals"]["sentences"])],
        "tags": ["nerdata", f"tagset:{manifest['tagset']['name']}"],
    }
    if lic["licence"] == "unknown":
        header["license"] = "other"
        header["license_name"] = "unknown"
    configs, infos = [], []
    for config, splits in manifest["configs"].items():
        entry: dict[str, Any] = {"config_name": config}
        if config == RESERVED_CONFIG:
            entry["default"] = True
        entry["data_files"] = [{"split": s, "path": data_files_pattern(config, s)}
                               for s in SPLITS if s in splits]
        configs.append(entry)
        sd = SplitDict()
        for s in SPLITS:
            if s in splits:
                sd.add(SplitInfo(name=s, num_bytes=splits[s]["num_bytes"],
                                 num_examples=splits[s]["num_examples"]))
        info = DatasetInfo(features=features, splits=sd, config_name=config,
                           download_size=sum(v["download_size"] for v in splits.values()),
                           dataset_size=sum(v["num_bytes"] for v in splits.values()))
        infos.append(info._to_yaml_dict())
    header["configs"] = configs
    header["dataset_info"] = infos
    return header


def _table(head: list[str], rows: list[list[Any]]) -> str:
    numeric = [bool(rows) and all(isinstance(r[i], (int, float)) for r in rows)
               for i in range(len(head))]
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---:" if num else "---" for num in numeric) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _flat_numbers(obj: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    if isinstance(obj, bool):
        return []
    if isinstance(obj, (int, float)):
        return [(prefix, round(obj, 4) if isinstance(obj, float) else obj)]
    if isinstance(obj, Mapping) and depth < 3:
        out = []
        for k, v in obj.items():
            out += _flat_numbers(v, f"{prefix}.{k}" if prefix else str(k), depth + 1)
        return out
    return []


def render_card(manifest: Mapping[str, Any], features) -> str:
    """The full ``README.md`` text."""
    import yaml

    header = card_header(manifest, features)
    c = manifest["counts"]
    name, version = manifest["name"], manifest["version"]
    splits = [s for s in SPLITS if s in c["splits"]]
    lic = manifest["licence"]
    parts = ["---", yaml.safe_dump(header, sort_keys=False, allow_unicode=True).rstrip(), "---",
             "", f"# {name} {version}", "",
             f"Named-entity recognition data in {len(c['langs'])} language(s) "
             f"({', '.join(sorted(c['langs']))}), tagset **{manifest['tagset']['name']}** "
             f"version {manifest['tagset']['version']} "
             f"({', '.join(manifest['tagset']['labels'])}), IOB2 tags. "
             f"Built by nerdata {manifest['tool']['version']}; `manifest.json` lists every "
             f"input with its checksum and the sha256 of every file of this release.", "",
             "## Loading", "",
             "```python", "from datasets import load_dataset",
             f'ds = load_dataset("ORG/{name}", "all", revision="v{version}")  # from the Hub',
             'ds = load_dataset("parquet", data_files={"train": "data/*/train-*.parquet"})  # local',
             "# or, verifying checksums first:", "import nerdata",
             f'ds = nerdata.load_release("path/to/{name}/{version}")  # config "all"', "```", "",
             "Configs: `all` (every language, the default) and one per language: "
             + ", ".join(f"`{k}`" for k in manifest["configs"] if k != RESERVED_CONFIG) + ".", "",
             "## Fields", ""]
    parts += [f"- `{col}`: {doc}" for col, doc in COLUMN_DOCS.items()]
    parts += ["", f"**Masked types.** {MASK_DOC}", "",
              "## Splits", "",
              "Sentences whose source has a split (an upstream test set, say) keep it. The "
              "others are assigned from a hash of their id "
              f"({', '.join(f'{k} {v:g}' for k, v in manifest['split_rule']['ratios'].items())}), "
              "so a sentence never changes split between versions. Duplicates (same "
              "normalised text and tokens) are removed, keeping the copy in the highest split "
              "(test, then dev, then train), then the one whose id has the smallest hash; the "
              "counts are in `manifest.json`.", "",
              "## Statistics", "",
              _table(["split", "sentences", "tokens", "entities", "masked tokens"],
                     [[s, c["splits"][s]["sentences"], c["splits"][s]["tokens"],
                       c["splits"][s]["entities"], c["splits"][s]["masked_tokens"]]
                      for s in splits]), "",
              "Sentences per language and split:", "",
              _table(["lang"] + splits,
                     [[lang] + [c["langs"][lang].get(s, {}).get("sentences", 0) for s in splits]
                      for lang in sorted(c["langs"])]), "",
              "Entities per label and split:", "",
              _table(["label"] + splits,
                     [[lab] + [c["labels"][lab].get(s, 0) for s in splits]
                      for lab in manifest["tagset"]["labels"] if lab in c["labels"]]), "",
              "Entities per language and label:", "",
              _table(["lang"] + list(manifest["tagset"]["labels"]),
                     [[lang] + [c["lang_labels"].get(lang, {}).get(lab, 0)
                                for lab in manifest["tagset"]["labels"]]
                      for lang in sorted(c["langs"])]), ""]
    dup = manifest["duplicates"]
    parts += [f"Duplicates removed: {dup['removed']} (of which {dup['conflicting']} had "
              f"different annotations from the copy kept).", "",
              "## Sources and licences", "",
              _table(["input", "kind", "licence (as stated)", "licence id"],
                     [[i["id"], i["kind"], i.get("licence") or "not stated",
                       lic["sources"].get(i["id"], "unknown")] for i in manifest["inputs"]]), "",
              f"**Licence of this release: {lic['name']}** (`{lic['licence']}`). The strictest "
              f"licence among the sources wins: every obligation of every source "
              f"({', '.join(lic['obligations']) or 'none'}) applies to the whole release"
              + (f"; it comes from {', '.join(lic['because'])}." if lic["because"] else ".")]
    parts += [f"- {n}" for n in lic["notes"]]
    parts += ["", "## Provenance", ""]
    prov = manifest["provenance"]
    parts.append(f"- annotators: {prov['annotators']} distinct")
    parts.append("- adjudication: " + (", ".join(f"{k} ({v})" for k, v in
                                                 prov["adjudication"].items()) or "none recorded"))
    parts.append("- models that produced pre-annotations: " + (
        ", ".join(f"`{k}` ({v})" for k, v in manifest["model_versions"].items()) or "none"))
    if manifest.get("agreement"):
        figures = _flat_numbers(manifest["agreement"])[:40]
        parts += ["", "## Agreement", "",
                  "Inter-annotator agreement as measured by `nerdata agree` (full figures in "
                  "`manifest.json`):", "", _table(["measure", "value"], [list(f) for f in figures])]
    parts.append("")
    return "\n".join(parts)
