"""The backend's retrain queue survives a restart: jobs waiting or running when the server
stopped or died are queued again when it starts (the interrupted one first)."""
from __future__ import annotations

import json
import threading
import time

from nerdata.workflows.retrain import RetrainQueue, RetrainResult


def _wait(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_jobs_of_a_dead_server_are_queued_again(tmp_path):
    state = tmp_path / "retrain_queue.json"
    hold = threading.Event()
    seen: list[tuple[str, str]] = []

    def stuck(slot, reason):  # the first server dies while this job trains
        seen.append((slot, reason))
        hold.wait()
        return RetrainResult("1", slot, "skipped", reason="released")

    first = RetrainQueue(stuck, lambda r: None, mode="thread", state_path=state)
    try:
        first.request("yor", "25 new annotations")
        _wait(lambda: seen)
        first.request("hau", "START_TRAINING")
        on_disk = json.loads(state.read_text("utf-8"))
        assert on_disk["running"]["slot"] == "yor" and list(on_disk["pending"]) == ["hau"]

        done: list[RetrainResult] = []

        def prepare(slot, reason):
            return RetrainResult(str(len(done)), slot, "skipped", reason=reason)

        second = RetrainQueue(prepare, done.append, mode="thread", state_path=state)
        assert second.requeued == ["yor", "hau"]
        assert second.wait_idle(10)
        assert [r.slot for r in done] == ["yor", "hau"]
        assert "25 new annotations" in done[0].reason
        assert all("re-queued after the server restarted" in r.reason for r in done)
        assert second.status()["requeued_after_restart"] == ["yor", "hau"]
        assert json.loads(state.read_text("utf-8")) == {"pending": {}, "running": None}
        second.close()
        third = RetrainQueue(prepare, done.append, mode="thread", state_path=state)
        assert third.requeued == [] and third.wait_idle(5)  # nothing runs twice
        third.close()
    finally:
        first.close()
        hold.set()


def test_an_unreadable_queue_file_is_reported_not_fatal(tmp_path):
    state = tmp_path / "retrain_queue.json"
    state.write_text("{not json", "utf-8")
    q = RetrainQueue(lambda s, r: RetrainResult("1", s, "skipped"), lambda r: None,
                     mode="thread", state_path=state)
    try:
        assert q.requeued == []
        assert "unreadable retrain queue" in q.history[0].reason
    finally:
        q.close()
