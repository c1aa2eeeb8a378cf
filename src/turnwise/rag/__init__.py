"""Multi-turn RAG: rewrite follow-ups into self-contained queries, retrieve, answer with the history.

    from turnwise.rag import RagEngine, RagIndex, Rewriter, read_corpus

    index = RagIndex.build(read_corpus("corpus.jsonl"))          # token chunks, MiniLM + BM25, hybrid fusion
    index.save("runs/index")                                     # RagIndex.load() embeds nothing again
    engine = RagEngine(index, model, rewriter=Rewriter(model))
    turn = await engine.answer(messages)                         # turn.query, turn.chunk_ids, turn.answer

- :mod:`~turnwise.rag.rewriter`: the gated, strictly parsed LLM rewriter (``rag/rewrite_*`` templates);
- :mod:`~turnwise.rag.index` and :mod:`~turnwise.rag.corpus`: the persisted hybrid index and its documents;
- :mod:`~turnwise.rag.engine` and :mod:`~turnwise.rag.batch`: one turn, an interactive session, the batch stage;
- :mod:`~turnwise.rag.stage`: the rewrite stage (``turnwise rewrite``);
- :mod:`~turnwise.rag.datasets`, :mod:`~turnwise.rag.metrics`, :mod:`~turnwise.rag.evaluate`: CANARD, CAsT,
  MuDoCo and Chinese rewrite data, and BLEU / ROUGE / exact match against human rewrites;
- :mod:`~turnwise.rag.scripted`: a rule-based stand-in model (pronoun substitution) for tests and demos.

Heavy pieces (numpy, sentence-transformers, jieba, sacrebleu) are imported only when used.
"""

from turnwise.rag.batch import BatchResult, answer_conversation, run_rag_batch
from turnwise.rag.corpus import Document, read_corpus
from turnwise.rag.datasets import READERS, RewriteExample, read_conversations, read_rewrite_data, read_turns
from turnwise.rag.engine import ChatSession, RagConfig, RagEngine, TurnResult, token_counter
from turnwise.rag.evaluate import RewriteReport, evaluate_rewrites, read_predictions
from turnwise.rag.index import Found, IndexSettings, RagIndex
from turnwise.rag.rewriter import Gate, Rewrite, RewriteConfig, Rewriter, parse_rewrite
from turnwise.rag.stage import RewriteResult, run_rewrite

__all__ = [
    "READERS",
    "BatchResult",
    "ChatSession",
    "Document",
    "Found",
    "Gate",
    "IndexSettings",
    "RagConfig",
    "RagEngine",
    "RagIndex",
    "Rewrite",
    "RewriteConfig",
    "RewriteExample",
    "RewriteReport",
    "RewriteResult",
    "Rewriter",
    "TurnResult",
    "answer_conversation",
    "evaluate_rewrites",
    "parse_rewrite",
    "read_conversations",
    "read_corpus",
    "read_predictions",
    "read_rewrite_data",
    "read_turns",
    "run_rag_batch",
    "run_rewrite",
    "token_counter",
]
