"""Fixed label colours: a label has the same colour in the Label Studio labeling config, on
the disagreement page (``nerdata agree --html``), on the ``nerdata report`` page and on its
charts, whatever order the labels appear in and whichever other labels are there; the
table covers the bundled tagsets and stays readable and colour-blind friendly."""
from __future__ import annotations

import itertools
import re
from dataclasses import replace

import pytest

from nerdata.agreement.compute import compute_agreement
from nerdata.agreement.report import disagreements, render_html
from nerdata.annotations import AnnotatedDocument, Annotation
from nerdata.doc import Document, Span
from nerdata.label_studio.config import render_label_config
from nerdata.tagsets import Tagset, list_tagsets, load_tagset

# PRODUCT is in no bundled tagset: its colour comes from the rule for other labels
LABELS = ("ORG", "PER", "LOC", "DATE", "PRODUCT")
ORDERS = {"given": LABELS, "reversed": LABELS[::-1], "subset": ("PRODUCT", "PER")}
MODEL = "m1"
HEX = r"#[0-9A-Fa-f]{6}"


def _items(order) -> list[AnnotatedDocument]:
    """One small document per label, in ``order``: two annotators who disagree on one span,
    and a model prediction both started from (so every report section has the label)."""
    out = []
    for i, lab in enumerate(order):
        doc = Document.from_tokens(f"d{i}", ["Ada", "met", "Kano", "people", "today"], lang="hau")
        first, third = (Span(t.start, t.end, lab) for t in (doc.tokens[0], doc.tokens[2]))
        pred = Annotation(MODEL, (replace(first, source="prediction", model_version=MODEL),),
                          model_version=MODEL)
        anns = (Annotation("ada", (first, third), from_prediction=MODEL),
                Annotation("bola", (first,), from_prediction=MODEL))
        out.append(AnnotatedDocument(doc, anns, (pred,)))
    return out


def _config_colours(order) -> dict[str, str]:
    xml = render_label_config(Tagset("t", "1", tuple(order), {}))
    return dict(re.findall(rf'<Label value="([^"]+)" background="({HEX})"', xml))


def _found(pairs) -> dict[str, str]:
    """``{label: colour}`` from (label, colour) pairs; a label seen in two colours fails."""
    seen: dict[str, set[str]] = {}
    for lab, colour in pairs:
        seen.setdefault(lab, set()).add(colour.upper())
    assert all(len(c) == 1 for c in seen.values()), f"a label in several colours: {seen}"
    return {lab: c.pop() for lab, c in seen.items()}


def _agreement_colours(items) -> dict[str, str]:
    page = render_html(disagreements(compute_agreement(items), items, top=None))
    marks = re.findall(rf'<mark style="background:({HEX})[^"]*" title="([^",]+)"', page)
    swatches = re.findall(rf'<span class="lab" style="background:({HEX})[^"]*">([^<]+)</span>', page)
    return _found((lab, c) for c, lab in marks + swatches)


def _page_colours(items, out) -> dict[str, str]:
    from nerdata.report.page import write_report

    page = write_report(out, items=items).path.read_text("utf-8")
    # the label cells of the entities, agreement and corrections tables
    rows = re.findall(rf'<tr class="lab" style="--label:({HEX})"><td>([^<]+)</td>', page)
    return _found((lab, c) for c, lab in rows)


def test_a_label_has_one_colour_in_the_editor_and_every_report_whatever_the_order(tmp_path):
    pytest.importorskip("matplotlib")
    colours: dict[str, dict[str, str]] = {}
    uncoloured = []
    for name, order in ORDERS.items():
        items = _items(order)
        got = {"labeling config": _config_colours(order), "agree --html": _agreement_colours(items),
               "report page": _page_colours(items, tmp_path / name)}
        for where, found in got.items():
            uncoloured += [f"{lab} ({where}, {name} order)" for lab in order if lab not in found]
            for lab, colour in found.items():
                colours.setdefault(lab, {})[f"{where}, {name} order"] = colour.upper()
    split = {lab: seen for lab, seen in colours.items() if len(set(seen.values())) > 1}
    assert not split and not uncoloured, (
        f"labels whose colour depends on the output or the label order: {split}; "
        f"labels not coloured: {uncoloured}")


def test_the_colours_are_the_fixed_ones(tmp_path):
    from nerdata.colours import label_colour

    for order in ORDERS.values():
        for lab, colour in _config_colours(order).items():
            assert colour == label_colour(lab)
    assert label_colour("PER") == label_colour("PERSON") == label_colour("NEP")
    # the rule for labels outside the table is a hash of the name: pinned, never an index
    assert label_colour("PRODUCT") == "#CCDDAA" and label_colour("GPE") == "#CCEEFF"
    # an explicit colour still wins in the labeling config
    xml = render_label_config(Tagset("t", "1", ("PER", "LOC"), {}), colors={"LOC": "#123456"})
    assert 'value="LOC" background="#123456"' in xml
    assert f'value="PER" background="{label_colour("PER")}"' in xml


def test_charts_put_each_label_axis_tick_on_its_colour(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.colors import to_hex

    import nerdata.charts as charts
    from nerdata.colours import label_colour

    figures = []
    make = charts._figure

    def record(*a, **kw):
        figures.append(make(*a, **kw))
        return figures[-1]

    monkeypatch.setattr(charts, "_figure", record)
    _page_colours(_items(LABELS), tmp_path)
    assert len(figures) == 3  # entities, agreement, corrections
    for fig in figures:
        ax = fig.axes[0]
        ticks = [t for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text() in LABELS]
        assert {t.get_text() for t in ticks} == set(LABELS)
        for t in ticks:
            box = t.get_bbox_patch()
            assert box is not None, t.get_text()
            assert to_hex(box.get_facecolor()) == label_colour(t.get_text()).lower(), t.get_text()


def test_every_tagset_has_its_own_colour_per_label():
    from nerdata.colours import FALLBACK, LABEL_COLOURS, PALETTE, label_colour

    for name in list_tagsets():
        labels = load_tagset(name).labels
        assert all(lab in LABEL_COLOURS for lab in labels), name
        colours = [label_colour(lab) for lab in labels]
        assert len(set(colours)) == len(colours), f"{name}: two labels share a colour"
    core = {label_colour(lab) for lab in ("PER", "LOC", "ORG", "DATE", "MISC")}
    assert len(core) == 5 and not core & set(FALLBACK)
    assert set(LABEL_COLOURS.values()) <= set(PALETTE) and set(FALLBACK) < set(PALETTE)


# ------------------------------------------------------------- readable, colour-blind friendly
def _rgb(colour: str):
    return [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]


def _linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _luminance(colour: str) -> float:
    r, g, b = (_linear(c) for c in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


# Machado, Oliveira & Fernandes (2009), severity 1.0, on linear RGB
CVD = {
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602),
                   (0.004733, 0.691367, 0.303900)),
}


def _lab_under(colour: str, matrix) -> tuple[float, float, float]:
    """CIELAB (D65) of ``colour`` as seen with the deficiency ``matrix``."""
    rgb = [_linear(c) for c in _rgb(colour)]
    rgb = [min(1.0, max(0.0, sum(m * c for m, c in zip(row, rgb)))) for row in matrix]
    xyz = [sum(m * c for m, c in zip(row, rgb)) / w for row, w in zip(
        ((0.4124, 0.3576, 0.1805), (0.2126, 0.7152, 0.0722), (0.0193, 0.1192, 0.9505)),
        (0.95047, 1.0, 1.08883))]
    fx, fy, fz = (v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116 for v in xyz)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def test_black_text_is_readable_on_every_colour():
    from nerdata.colours import PALETTE, TEXT_COLOUR

    for colour in PALETTE:
        ratio = (_luminance(colour) + 0.05) / (_luminance(TEXT_COLOUR) + 0.05)
        assert ratio >= 7.0, f"{colour}: contrast {ratio:.1f} with {TEXT_COLOUR} (WCAG AAA: 7)"


@pytest.mark.parametrize("deficiency", sorted(CVD))
def test_the_common_types_stay_apart_with_colour_blindness(deficiency):
    from nerdata.colours import label_colour

    seen = {lab: _lab_under(label_colour(lab), CVD[deficiency])
            for lab in ("PER", "LOC", "ORG", "DATE", "MISC")}
    for a, b in itertools.combinations(seen, 2):
        delta = sum((x - y) ** 2 for x, y in zip(seen[a], seen[b])) ** 0.5
        assert delta > 12, f"{a} and {b} look alike with {deficiency} (delta E {delta:.1f})"
