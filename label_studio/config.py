"""Label Studio labeling configs for span NER: render from a tagset, parse, validate.

The rendered config has one ``<Labels>`` block (one ``<Label>`` per tagset type, with its
fixed colour from :mod:`nerdata.colours` -- the one the reports use --, a hotkey and the
type's description as hint) over ``<Text name="text" value="$text" granularity="word"/>``.
``granularity="word"`` makes the UI snap selections to word boundaries; the toolkit still
checks token alignment on pull.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence
from xml.sax.saxutils import quoteattr

from nerdata.colours import label_colour
from nerdata.errors import ConfigError
from nerdata.tagsets import Tagset

FROM_NAME = "label"
TO_NAME = "text"
HOTKEYS = tuple("1234567890") + tuple("qwertyuiop")
SPAN_TAGS = ("Labels", "HyperTextLabels", "ParagraphLabels")
# The text's fonts: Debian's Noto fonts (``make fonts``) for every script of our corpora, so no
# sentence shows as empty boxes; the browser takes each character from the first that has it.
FONT_STACK = ('"Noto Sans", "Noto Sans Devanagari", "Noto Sans Oriya", "Noto Sans Odia", '
              '"Noto Sans Telugu", "Noto Sans Bengali", "Noto Nastaliq Urdu", '
              '"Noto Naskh Arabic", "Noto Sans Arabic", "Noto Sans Ethiopic", sans-serif')
TEXT_CLASS = "nerdata-text"


@dataclass(frozen=True)
class LabelConfig:
    """The parts of a labeling config that span import/export needs."""

    from_name: str
    to_name: str
    labels: tuple[str, ...]
    value_key: str  # task data field holding the text ("text" for "$text")
    granularity: str | None = None

    def missing(self, labels: Iterable[str]) -> list[str]:
        have = set(self.labels)
        return sorted({lab for lab in labels if lab not in have})


def render_label_config(tagset: Tagset, *, colors: Mapping[str, str] | None = None,
                        hotkeys: Mapping[str, str] | None = None, rtl: bool = False,
                        from_name: str = FROM_NAME, to_name: str = TO_NAME,
                        extra_labels: Sequence[str] = ()) -> str:
    """The labeling config XML for ``tagset`` (``extra_labels`` appended after its types).

    ``rtl`` lays the text out right-to-left (Urdu, Arabic); offsets are unaffected.  A
    label's ``background`` is :func:`nerdata.colours.label_colour` unless ``colors`` names one.
    """
    labels = list(tagset.labels) + [x for x in extra_labels if x not in tagset.labels]
    colors = dict(colors or {})
    hotkeys = dict(hotkeys or {})
    used = set(hotkeys.values())
    free = [k for k in HOTKEYS if k not in used]
    lines = ["<View>", f"  <Labels name={quoteattr(from_name)} toName={quoteattr(to_name)}>"]
    for lab in labels:
        attrs = [f"value={quoteattr(lab)}",
                 f"background={quoteattr(colors.get(lab) or label_colour(lab))}"]
        key = hotkeys.get(lab) or (free.pop(0) if free else None)
        if key:
            attrs.append(f"hotkey={quoteattr(key)}")
        hint = tagset.descriptions.get(lab)
        if hint:
            attrs.append(f"hint={quoteattr(hint)}")
        lines.append(f"    <Label {' '.join(attrs)}/>")
    lines.append("  </Labels>")
    text = f'<Text name={quoteattr(to_name)} value="$text" granularity="word"/>'
    # the editor's own CSS sets a font on the text's elements, so an inherited style loses
    lines.append(f"  <Style>.{TEXT_CLASS}, .{TEXT_CLASS} * {{ font-family: {FONT_STACK} !important; }}"
                 f"</Style>")
    style = ' style="direction: rtl; text-align: right"' if rtl else ""
    lines.append(f'  <View className="{TEXT_CLASS}"{style}>{text}</View>')
    lines.append("</View>")
    return "\n".join(lines)


def parse_label_config(xml: str, *, from_name: str | None = None, where: str = "") -> LabelConfig:
    """Find the span-labels block of ``xml`` (the one named ``from_name`` if given)."""
    prefix = f"{where}: " if where else ""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ConfigError(f"{prefix}labeling config is not valid XML ({exc})") from exc
    texts = {el.get("name"): el for el in root.iter() if el.tag in ("Text", "HyperText", "Paragraphs")}
    blocks = [el for el in root.iter() if el.tag in SPAN_TAGS]
    if from_name is not None:
        blocks = [b for b in blocks if b.get("name") == from_name]
    if not blocks:
        want = f" named {from_name!r}" if from_name else ""
        raise ConfigError(f"{prefix}labeling config has no <Labels>{want} block for span NER; "
                          f"recreate the project with a config from this tagset")
    if len(blocks) > 1:
        names = ", ".join(repr(b.get("name")) for b in blocks)
        raise ConfigError(f"{prefix}labeling config has several span-label blocks ({names}); "
                          f"say which one to use (from_name=...)")
    block = blocks[0]
    to = block.get("toName") or ""
    target = texts.get(to)
    if target is None:
        raise ConfigError(f"{prefix}<Labels name={block.get('name')!r}> points to {to!r}, "
                          f"which is not a <Text> of the config")
    value = target.get("value") or ""
    if not value.startswith("$"):
        raise ConfigError(f"{prefix}<Text name={to!r}> has value {value!r}; expected '$<field>'")
    labels = tuple(el.get("value") for el in block.iter("Label") if el.get("value"))
    return LabelConfig(block.get("name") or FROM_NAME, to, labels, value[1:],
                       target.get("granularity"))


def check_labels(config: LabelConfig, labels: Iterable[str], *, where: str = "",
                 what: str = "the data") -> None:
    """Raise :class:`ConfigError` naming the labels ``what`` uses that ``config`` lacks."""
    missing = config.missing(labels)
    if missing:
        raise ConfigError(
            f"{where + ': ' if where else ''}the project's labeling config lacks label(s) "
            f"{', '.join(missing)} used by {what} (it has {', '.join(config.labels) or 'none'}); "
            f"add {' '.join(f'<Label value={quoteattr(lab)}/>' for lab in missing)} in the "
            f"project settings, map the data to the project's tagset (--tagset), or use another "
            f"project")


def check_tagset(config: LabelConfig, tagset: Tagset, *, where: str = "") -> None:
    """The project must offer every type of ``tagset`` (extra project labels are fine)."""
    check_labels(config, tagset.labels, where=where, what=f"tagset {tagset.name!r}")
