"""Report sections for the model-in-the-loop figures: the backend's retraining decisions
(``--backend-state DIR``) and a simulated annotation campaign (``--campaign DIR``).

* retraining: every job in ``DIR/retrain.jsonl`` (the backend's training log) with the
  gate's decision, both F1, the difference and its 95% paired bootstrap interval, and the
  evaluation sets recorded in ``DIR/gate.json``;
* campaign: ``rounds.csv`` of :mod:`nerdata.workflows.campaign` as a table and its two
  learning curves.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nerdata.errors import NotFoundError



def read_backend_state(directory: str | Path) -> dict[str, Any]:
    """The retrain log and the recorded gate evaluation sets of a backend state directory."""
    d = Path(directory)
    log = d / "retrain.jsonl"
    if not d.is_dir() or not (log.exists() or (d / "events.jsonl").exists()):
        raise NotFoundError(f"{directory}: not a backend state directory (no retrain.jsonl or "
                            f"events.jsonl); give the --state-dir of 'nerdata serve'")
    jobs = []
    if log.exists():
        for lineno, line in enumerate(log.read_text("utf-8").splitlines(), 1):
            if line.strip():
                try:
                    jobs.append(json.loads(line))
                except ValueError:
                    jobs.append({"job_id": f"line {lineno}", "status": "unreadable"})
    gate = {}
    if (d / "gate.json").exists():
        gate = json.loads((d / "gate.json").read_text("utf-8"))
    return {"directory": str(d), "jobs": jobs, "evaluation_sets": gate}


def backend_section(section, directory: str | Path, table) -> Any:
    """Fill ``section`` (a :class:`nerdata.report.page.Section`) from a backend state dir."""
    state = read_backend_state(directory)
    jobs = state["jobs"]
    section.data = state
    if not jobs:
        return section.empty(f"No retraining has finished in {directory} yet.")
    section.status = "ok"
    sets = ", ".join(f"{slot}: {v.get('documents')} documents ({v.get('source')})"
                     for slot, v in state["evaluation_sets"].items()) or "not recorded"
    section.body.append(f'<p class="note">Gate: accepted when the lower bound of the 95% paired '
                        f'bootstrap interval of candidate - current F1 is at least -tolerance. '
                        f'Evaluation sets: {sets}.</p>')

    def pct(v: Any) -> Any:
        return None if v is None else f"{100 * v:+.1f}" if v < 0 or v > 0 else "0.0"

    rows = [[j.get("job_id"), j.get("slot"), j.get("status"),
             None if j.get("current_f1") is None else f"{100 * j['current_f1']:.1f}",
             None if j.get("candidate_f1") is None else f"{100 * j['candidate_f1']:.1f}",
             pct(j.get("delta")),
             None if j.get("ci_low") is None else f"[{pct(j['ci_low'])}, {pct(j['ci_high'])}]",
             j.get("n_eval"), (j.get("rehearsal") or {}).get("rehearsal"),
             (j.get("rehearsal") or {}).get("rehearsed"), j.get("n_train"), j.get("finished")]
            for j in jobs]
    section.body.append(table(["job", "model", "decision", "current F1", "candidate F1",
                               "difference", "95% CI", "eval docs", "rehearsal", "rehearsed",
                               "trained on", "finished"], rows))
    return section


def campaign_section(section, directory: str | Path, out: Path, table, add_figure) -> Any:
    """Fill ``section`` from a campaign directory (rounds.csv + learning curves)."""
    from nerdata.workflows.campaign import plot_campaign, read_rounds

    rows = read_rounds(directory)
    section.data = {"directory": str(directory), "rounds": rows}
    if not rows:
        return section.empty(f"The campaign in {directory} has no finished round yet.")
    section.status = "ok"
    section.body.append(f'<p class="note">Campaign in <code>{directory}</code>, strategy '
                        f'{rows[0].get("strategy")}. Edits: span edits the annotator made on the '
                        f'batch pre-annotated by the current model, against annotating it from '
                        f'scratch (one per final span).</p>')

    def num(v: Any, fmt: str) -> Any:
        return None if v is None else format(v, fmt)

    section.body.append(table(
        ["round", "sentences", "tokens", "test F1", "edits/sentence (pre-annotated)",
         "edits/sentence (scratch)"],
        [[num(r["round"], ".0f"), num(r["sentences"], ".0f"), num(r["tokens"], ".0f"),
          num(100 * r["test_f1"], ".1f"), num(r.get("edits_per_sentence_preannotated"), ".2f"),
          num(r.get("edits_per_sentence_scratch"), ".2f")] for r in rows]))
    f1, edits = plot_campaign(directory, rows, out=out, prefix="campaign-")
    add_figure(section, f1, "test F1 vs annotated tokens")
    add_figure(section, edits, "span edits per sentence per round, pre-annotated vs from scratch")
    return section


__all__ = ["backend_section", "campaign_section", "read_backend_state"]
