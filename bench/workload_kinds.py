"""The workloads a run can measure, as request items every target is sent alike.

An item is one request: `{"id", "prompt"}` (raw text on /api/generate) or `{"id", "messages"}`
(/api/chat, through the model's template), and `"format": "json"` for JSON mode. A unit is what
one in-flight slot runs start to end: one item, or for `multiturn` a whole conversation.

    raw        the prompt set as raw text (`raw: true`): no template, the engine's own speed
    chat       the prompt set as one user message each, through the chat template
    multiturn  conversations whose history grows each turn: every turn resends the history, so a
               server that keeps the prefix (vLLM's prefix caching, Ollama's slot cache) answers
               the later turns sooner; time to first token is reported per turn
    long       a raw prompt of about `long_tokens` tokens (a report, then a question): the
               prefill rate, prompt tokens per second of time to first token
    json       chat requests asking for JSON, with `format: "json"` (the grammar-constrained path)

Each long prompt and each conversation opens with a tag naming the run and the unit, so no two
requests (nor two runs of a level) share a prefix that a cache could answer from; within one
conversation the history is the prefix the next turn shares, by design. The assistant turns of a
conversation are scripted, not the model's replies: every target is sent the same tokens.
"""

from __future__ import annotations

import random
from typing import Any

KINDS = ("raw", "chat", "multiturn", "long", "json")

Item = dict[str, Any]
Unit = list[Item]

JSON_PROMPTS = [
    "Give me a JSON object with the fields country, capital and population for France.",
    "Describe a cat as a JSON object with the keys name, age and colour.",
    "Return a JSON object listing three primary colours under the key colours.",
    "Write a JSON object for a book with title, author and year.",
    "As JSON, give the boiling and freezing points of water in Celsius.",
    "Make a JSON object with a key weekdays holding the days Monday to Friday.",
]

TOPICS = ["Lisbon", "Kyoto", "Montreal", "Cape Town", "Oslo", "Buenos Aires", "Edinburgh", "Hanoi"]
USER_TURNS = [
    "Hi! I am planning a week-long trip to {topic} next spring. Where should I start?",
    "Thanks. What should I pack for the weather there at that time of year?",
    "Good to know. How should I split the days between the city and short trips outside it?",
    "Great. Can you summarise your advice in three short bullet points?",
    "One more thing: what is a polite phrase I should learn before going?",
    "Thank you, that is all for now.",
]
ASSISTANT_TURNS = [
    "Start by choosing a neighbourhood close to public transport, book your flights early, and make a "
    "short list of the sights that matter most to you so that each day has one fixed point and room "
    "for wandering.",
    "Pack light layers: a warm jumper for the evenings, a waterproof jacket, comfortable walking shoes "
    "and a small umbrella. Spring weather changes quickly, so something you can take off and carry "
    "helps more than one heavy coat.",
    "Spend the first four days in the city to get your bearings, then use the remaining days for two "
    "or three day trips by train, coming back to the same hotel each night so you do not have to pack "
    "and unpack.",
    "- Stay near transport and plan one sight a day.\n- Pack layers and good shoes.\n- Four days in "
    "the city, then day trips by train.",
    "A simple greeting and a thank you in the local language go a long way; people appreciate the "
    "effort even when the pronunciation is not perfect.",
]

REPORT_SENTENCES = [
    "The committee met on Tuesday to review the quarterly figures for the northern warehouses.",
    "Deliveries rose by eight percent compared with the same period last year, mostly in spare parts.",
    "Two of the older forklifts were replaced, and the staff received a day of safety training.",
    "The heating system in the main hall failed twice in January and was repaired under warranty.",
    "A new scheduling tool reduced the average waiting time of lorries at the gate to twelve minutes.",
    "Energy use fell slightly after the roof lights were switched to motion sensors.",
    "The team recommends moving the packaging line closer to the loading bays next summer.",
    "Customer complaints about damaged goods dropped, although returns of the wrong size increased.",
    "Three temporary workers were hired for the busy weeks before the holidays.",
    "The inventory count in March found a small difference in the number of pallets, since corrected.",
    "A pilot with electric vans covered the short routes in the city centre without any breakdowns.",
    "Rent for the eastern site will increase next year, which the budget already takes into account.",
    "The fire inspection passed, with one note about a blocked emergency exit that was cleared the same day.",
    "Training for the new barcode scanners is planned for the first week of the next quarter.",
    "Overtime hours were lower than planned because the night shift was reorganised in February.",
    "Suppliers were asked to send their invoices electronically, and most of them already do.",
]
LONG_QUESTION = "\n\nQuestion: In one sentence, what is the report above about?\nAnswer:"
WORDS_PER_TOKEN = 0.75  # English prose in a BPE vocabulary of about 50k: roughly 4 tokens to 3 words


def n_units(kind: str, concurrency: int) -> int:
    """Units per level: R = max(2C, 8) single requests; max(C, 4) conversations or long prompts
    (each of those is several requests, or one heavy one)."""
    if kind in ("multiturn", "long"):
        return max(concurrency, 4)
    return max(2 * concurrency, 8)


def long_prompt(tag: str, tokens: int) -> str:
    """A report of about `tokens` tokens, its sentences drawn (seeded by the tag) from a fixed set."""
    rng = random.Random(tag)
    words = [f"Report {tag}."]
    count = 2
    while count < tokens * WORDS_PER_TOKEN:
        sentence = rng.choice(REPORT_SENTENCES)
        words.append(sentence)
        count += len(sentence.split())
    return " ".join(words) + LONG_QUESTION


def conversation(tag: str, index: int, turns: int) -> Unit:
    """`turns` requests; request k carries the k-1 scripted exchanges before it, then the k-th question."""
    turns = max(1, min(turns, len(USER_TURNS)))
    topic = TOPICS[index % len(TOPICS)]
    history: list[dict[str, str]] = []
    unit: Unit = []
    for k in range(turns):
        question = USER_TURNS[k].format(topic=topic)
        if k == 0:
            question = f"(conversation {tag}) {question}"
        history = history + [{"role": "user", "content": question}]
        unit.append({"id": f"{topic.lower().replace(' ', '-')}-t{k + 1}", "messages": history, "turn": k + 1})
        history = history + [{"role": "assistant", "content": ASSISTANT_TURNS[k % len(ASSISTANT_TURNS)]}]
    return unit


def units(kind: str, prompts: list[dict[str, str]], count: int, tag: str, *, long_tokens: int = 2000,
          turns: int = 4) -> list[Unit]:
    """`count` units of a workload; `tag` keeps long prompts and conversations apart between runs."""
    if kind == "raw":
        return [[{"id": p["id"], "prompt": p["prompt"]}] for p in _cycle(prompts, count)]
    if kind == "chat":
        return [[{"id": p["id"], "messages": [{"role": "user", "content": p["prompt"]}]}]
                for p in _cycle(prompts, count)]
    if kind == "json":
        return [[{"id": f"json-{i % len(JSON_PROMPTS)}", "messages": [{"role": "user", "content": text}],
                  "format": "json"}] for i, text in enumerate(_cycle(JSON_PROMPTS, count))]
    if kind == "long":
        return [[{"id": f"long-{i}", "prompt": long_prompt(f"{tag}-{i}", long_tokens)}] for i in range(count)]
    if kind == "multiturn":
        return [conversation(f"{tag}-{i}", i, turns) for i in range(count)]
    raise ValueError(f"unknown workload {kind!r} (one of {', '.join(KINDS)})")


def _cycle(items: list[Any], count: int) -> list[Any]:
    return [items[i % len(items)] for i in range(count)]


def describe(kind: str) -> str:
    return {
        "raw": "raw prompts (/api/generate, raw)",
        "chat": "chat (/api/chat, one user message)",
        "multiturn": "multi-turn chat (history grows each turn)",
        "long": "long prompt (prefill)",
        "json": "JSON mode (/api/chat, format json)",
    }[kind]
