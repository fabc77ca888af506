"""Model-vs-human correction rates: how pre-annotations became final annotations.

Each final (completed) annotation is compared with the prediction it started from
(``Annotation.from_prediction`` = the prediction's ``model_version``); when that is not
recorded, with every prediction of the task.  Figures per ``model_version``:

* precision/recall/F1 (exact match) of the predictions against the final annotations;
* ``accepted_unchanged``: comparisons where the final spans equal the predicted ones;
* per label, what annotators did to the predicted spans, from a one-to-one matching
  (:mod:`nerdata.agreement.match`, all classes, in this order of preference):
  ``kept`` (unchanged), ``relabelled`` (same offsets, new label), ``boundary`` (same
  label, offsets moved), ``relabelled_and_moved``, ``removed`` (no overlapping final
  span left) -- counted under the predicted label -- and ``added`` (a final span no
  prediction overlaps) under the final label.  ``relabelled_to`` lists label changes.
"""
from __future__ import annotations

import numpy as np

from nerdata.agreement.data import AgreementData
from nerdata.agreement.match import BOUNDARY, EXACT, OTHER, RELABEL, compare, greedy_match
from nerdata.agreement.stats import prf

CHANGES = ("kept", "relabelled", "boundary", "relabelled_and_moved", "removed", "added")


class Corrections(dict):
    """Correction figures by model version (a plain JSON-ready dict) with :meth:`to_frame`."""

    def to_frame(self):
        """The correction table of ``nerdata agree`` (one row per model version and label) as
        a pandas DataFrame (:func:`nerdata.frames.corrections_frame`)."""
        from nerdata.frames import corrections_frame

        return corrections_frame(self)


def corrections(data: AgreementData) -> Corrections | None:
    """Correction figures by model version (None when no task has predictions and a
    completed annotation)."""
    if len(data.corr_pred) == 0:
        return None
    K = data.n_labels
    pset = data.pred_sets[data.corr_pred]
    cmp = compare(data, pset, data.corr_ann)  # A = prediction, B = final annotation
    U = cmp.n_units
    model = data.pred_model[data.corr_pred].astype(np.int64)
    lab = data.span_label.astype(np.int64)
    exact = greedy_match(cmp, (EXACT,))
    n_pred = np.bincount(cmp.a_unit, minlength=U)
    n_final = np.bincount(cmp.b_unit, minlength=U)
    tp = np.bincount(cmp.a_unit[cmp.cand_a[exact]], minlength=U)
    unchanged = (tp == n_pred) & (tp == n_final)
    every = greedy_match(cmp, (EXACT, RELABEL, BOUNDARY, OTHER))
    cls = cmp.cand_class[every]
    a_lab = lab[cmp.a_span[cmp.cand_a[every]]]
    b_lab = lab[cmp.b_span[cmp.cand_b[every]]]
    a_model = model[cmp.a_unit[cmp.cand_a[every]]]
    matched_a = np.zeros(len(cmp.a_unit), dtype=bool)
    matched_a[cmp.cand_a[every]] = True
    matched_b = np.zeros(len(cmp.b_unit), dtype=bool)
    matched_b[cmp.cand_b[every]] = True
    n_models = len(data.model_versions)

    def per(model_idx: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.bincount(model_idx * K + labels, minlength=n_models * K).reshape(n_models, K)

    table = {
        "kept": per(a_model[cls == EXACT], a_lab[cls == EXACT]),
        "relabelled": per(a_model[cls == RELABEL], a_lab[cls == RELABEL]),
        "boundary": per(a_model[cls == BOUNDARY], a_lab[cls == BOUNDARY]),
        "relabelled_and_moved": per(a_model[cls == OTHER], a_lab[cls == OTHER]),
        "removed": per(model[cmp.a_unit[~matched_a]], lab[cmp.a_span[~matched_a]]),
        "added": per(model[cmp.b_unit[~matched_b]], lab[cmp.b_span[~matched_b]]),
    }
    relab = (cls == RELABEL) | (cls == OTHER)
    conf = np.bincount((a_model[relab] * K + a_lab[relab]) * K + b_lab[relab],
                       minlength=n_models * K * K).reshape(n_models, K, K)
    out = Corrections()
    for mi, name in enumerate(data.model_versions):
        sel = model == mi
        if not sel.any():
            continue
        docs = np.unique(data.set_doc[pset[sel]])
        labels = {}
        for j in range(1, K):
            row = {c: int(table[c][mi, j]) for c in CHANGES}
            row["changed"] = sum(row[c] for c in CHANGES if c != "kept")
            row["relabelled_to"] = {data.labels[k]: int(conf[mi, j, k]) for k in np.flatnonzero(conf[mi, j])}
            if row["changed"] or row["kept"]:
                labels[data.labels[j]] = row
        ordered = dict(sorted(labels.items(), key=lambda kv: (-kv[1]["changed"], kv[0])))
        out[name] = {
            "n_tasks": int(len(docs)), "n_comparisons": int(sel.sum()),
            "n_predicted_spans": int(n_pred[sel].sum()), "n_final_spans": int(n_final[sel].sum()),
            "exact": prf(tp[sel].sum(), n_final[sel].sum(), n_pred[sel].sum()),
            "accepted_unchanged": int(unchanged[sel].sum()),
            "accepted_unchanged_share": float(unchanged[sel].mean()),
            "changes_by_label": ordered,
        }
    return out
