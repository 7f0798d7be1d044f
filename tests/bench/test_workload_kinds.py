"""bench.workload_kinds and the multi-request driver: what each workload sends, and that no two runs
share a cacheable prefix; the multi-turn driver keeps a conversation's turns in order."""

import asyncio

import pytest

from bench import workload_kinds as kinds
from bench.workload import Timer, Workload, run_level

PROMPTS = [{"id": "a", "prompt": "A"}, {"id": "b", "prompt": "B"}]


def test_units_per_level():
    assert [kinds.n_units("raw", c) for c in (1, 4, 16)] == [8, 8, 32]
    assert [kinds.n_units("long", c) for c in (1, 4, 16)] == [4, 4, 16]
    w = Workload(PROMPTS, kind="multiturn", turns=3)
    assert (w.n_requests(2), w.n_records(2)) == (4, 12)


def test_a_long_prompt_is_about_the_size_asked_and_each_tag_its_own():
    a, b = kinds.long_prompt("r1-0", 2000), kinds.long_prompt("r1-1", 2000)
    assert 1400 <= len(a.split()) <= 1600  # about 2,000 tokens of English
    assert a.startswith("Report r1-0.") and a.endswith("Answer:")
    assert a != b and a.split()[:3] != b.split()[:3]  # they differ from the first words: nothing to reuse
    assert kinds.long_prompt("r1-0", 2000) == a  # the same tag, the same text, on every target


def test_a_conversation_resends_its_history_with_scripted_replies():
    unit = kinds.conversation("t", 0, 3)
    assert [item["turn"] for item in unit] == [1, 2, 3]
    assert [len(item["messages"]) for item in unit] == [1, 3, 5]
    for before, after in zip(unit, unit[1:]):
        assert after["messages"][:len(before["messages"])] == before["messages"]  # the prefix a cache keeps
    assert [m["role"] for m in unit[2]["messages"]] == ["user", "assistant", "user", "assistant", "user"]
    assert "(conversation t)" in unit[0]["messages"][0]["content"]


def test_tags_keep_runs_apart_and_targets_alike():
    w = Workload(PROMPTS, kind="long", long_tokens=100)
    first = w.next_tag("vllama", 4), w.next_tag("ollama", 4)
    assert first[0] == first[1]  # the n-th run of a level is the same on every target
    assert w.next_tag("vllama", 4) != first[0]
    assert w.schedule(4, first[0]) != w.schedule(4, w.next_tag("vllama", 4))


@pytest.mark.parametrize("kind", kinds.KINDS)
def test_every_workload_builds_valid_bodies(kind):
    w = Workload(PROMPTS, kind=kind, long_tokens=50, turns=2)
    for unit in w.schedule(2):
        for item in unit:
            path, body = w.http_request("m", item)
            assert path == ("/api/generate" if kind in ("raw", "long") else "/api/chat")
            assert body["options"] == w.options()
            assert (body.get("format") == "json") == (kind == "json")
    assert len(w.warmup_items(1)) == 1
    assert w.describe()["kind"] == kind


class Recorder:
    name, kind = "fake", "fake"

    def __init__(self, fail_turn=None):
        self.seen = []
        self.fail_turn = fail_turn

    async def request(self, workload, item):
        self.seen.append(item)
        await asyncio.sleep(0.001)
        error = "boom" if item.get("turn") == self.fail_turn else None
        return Timer().record(item["id"], 1, error)


def test_multiturn_levels_run_each_conversation_in_order_and_a_failed_turn_ends_it():
    w = Workload(PROMPTS, kind="multiturn", turns=3)
    target = Recorder()
    records, _ = asyncio.run(run_level(target, w, 2))
    assert len(records) == 12
    by_unit = {}
    for r in records:
        by_unit.setdefault(r["index"], []).append(r["turn"])
    assert all(turns == [1, 2, 3] for turns in by_unit.values())
    target = Recorder(fail_turn=2)
    records, _ = asyncio.run(run_level(target, w, 2))
    assert sorted(r["turn"] for r in records) == [1, 1, 1, 1, 2, 2, 2, 2]
