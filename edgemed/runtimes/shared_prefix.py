"""Next-token logits for many prompts that share a prefix, in few ``llama_decode`` calls.

A rubric judge asks one question per criterion about the same answer: the prompts differ only in
their last few dozen tokens. Evaluating them one after another (the prefix cached, each suffix its
own small batch) keeps the CPU's matrix kernels underfed; llama.cpp's own ``batched`` and
``parallel`` examples instead put several sequences in one batch. This module does the same:

1. the longest prefix common to every prompt goes into sequence 0, reusing whatever of it the KV
   cache already holds from the previous call (the rules and the conversation, typically);
2. the prefix is shared with sequences 1..K by ``llama_memory_seq_cp`` (a unified KV cache, so this
   copies no data), and every prompt's remaining tokens go into ONE batch, each on its own sequence,
   with logits requested only for each prompt's last token;
3. the per-prompt sequences are dropped afterwards, sequence 0 stays for the next call.

The prompts, tokens and positions are exactly those of one-at-a-time evaluation, so the logits
agree with it up to floating-point summation order (checked in tests to 1e-3 in probability).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Length of the longest prefix shared by every row, keeping at least one token per row to evaluate.

    >>> common_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]])
    2
    >>> common_prefix_length([[7, 8], [7, 8]])
    1
    >>> common_prefix_length([[9]])
    0
    """
    if not rows:
        return 0
    limit = min(len(r) for r in rows) - 1
    n = 0
    while n < limit and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return n


def plan_groups(lengths: Sequence[int], prefix: int, n_ctx: int, max_seqs: int) -> list[list[int]]:
    """Split prompts (by their suffix ``lengths``) into groups that fit the KV cache beside the prefix.

    A prompt that cannot fit even alone gets a group of its own (the caller reports it as failed).

    >>> plan_groups([30, 30, 30], prefix=100, n_ctx=170, max_seqs=8)
    [[0, 1], [2]]
    >>> plan_groups([5, 5, 5], prefix=0, n_ctx=100, max_seqs=2)
    [[0, 1], [2]]
    """
    groups: list[list[int]] = []
    current: list[int] = []
    used = prefix
    for i, n in enumerate(lengths):
        if current and (used + n > n_ctx or len(current) >= max_seqs):
            groups.append(current)
            current, used = [], prefix
        current.append(i)
        used += n
    if current:
        groups.append(current)
    return groups


def default_threads() -> int:
    """Physical cores (logical ones when unknown): prompt processing is compute-bound, one thread each.

    >>> default_threads() >= 1
    True
    """
    import os

    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


class SharedPrefixScorer:
    """Own llama.cpp context over a loaded model, ``n_seq`` sequences, unified KV cache.

    ``last_logits(token_rows)`` returns, for each row (a full prompt's tokens), the logits of the
    token that would follow it (``columns`` only, when given). ``ValueError`` for a row longer than
    the context; ``RuntimeError`` when llama.cpp's decode fails.

    >>> scorer = SharedPrefixScorer(llm, n_ctx=4096, n_batch=512, n_seq=16)  # doctest: +SKIP
    >>> scorer.last_logits([tokens_a, tokens_b], columns=[9454, 2152])        # doctest: +SKIP
    """

    def __init__(self, llm, n_ctx: int, n_batch: int, n_seq: int, n_threads: int | None = None):
        from edgemed.runtimes.llamacpp import import_llama_cpp

        llama_cpp = import_llama_cpp()  # the wait policy is set before the library loads
        self._lc = llama_cpp
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = n_seq + 1  # sequence 0 holds the shared prefix
        params.kv_unified = True      # sequences share cells: seq_cp is a bookkeeping operation
        # llama-cpp-python's own default is half the logical CPUs: 1 thread on a 2-core machine, which
        # halved the judge's speed in every stage that left n_threads unset. Use every physical core.
        threads = n_threads or default_threads()
        params.n_threads = params.n_threads_batch = threads
        params.no_perf = True
        ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
        if not ctx:
            raise RuntimeError("llama.cpp could not create a context for the judge")
        self._ctx = ctx
        self._mem = llama_cpp.llama_get_memory(ctx)
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self.n_ctx, self.n_batch, self.n_seq = n_ctx, n_batch, n_seq
        self.n_vocab = llm.n_vocab()
        self._cached: list[int] = []  # tokens held by sequence 0
        self.tokens_reused = 0     # prompt tokens read from the KV cache instead of evaluated
        self.tokens_evaluated = 0
        self.decode_calls = 0

    # -- llama.cpp calls -------------------------------------------------------------------------
    def _decode(self, entries: list[tuple[int, int, int, bool]], on_logits: Callable[[int, int], None]) -> None:
        """Decode (token, pos, seq, want_logits) entries in batches of ``n_batch``."""
        lc, batch = self._lc, self._batch
        for start in range(0, len(entries), self.n_batch):
            chunk = entries[start:start + self.n_batch]
            for i, (tok, pos, seq, want) in enumerate(chunk):
                batch.token[i] = tok
                batch.pos[i] = pos
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = seq
                batch.logits[i] = want
            batch.n_tokens = len(chunk)
            rc = lc.llama_decode(self._ctx, batch)
            self.decode_calls += 1
            if rc != 0:
                self._reset()
                raise RuntimeError(f"llama_decode returned {rc}")
            for i, (_, _, _, want) in enumerate(chunk):
                if want:
                    on_logits(start + i, i)

    def _logits(self, index_in_batch: int) -> np.ndarray:
        ptr = self._lc.llama_get_logits_ith(self._ctx, index_in_batch)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _reset(self) -> None:
        self._lc.llama_memory_clear(self._mem, True)
        self._cached = []

    def forget(self) -> None:
        """Drop everything cached: the next call evaluates its prompts from the first token."""
        self._reset()

    # -- the one public operation ----------------------------------------------------------------
    def last_logits(self, rows: Sequence[Sequence[int]], columns: Sequence[int] | None = None) -> list[np.ndarray | Exception]:
        """Next-token logits after each row; an exception object in place of a row that cannot run."""
        out: list[np.ndarray | Exception] = [ValueError("not evaluated")] * len(rows)
        if not rows:
            return out
        fits = [i for i, r in enumerate(rows) if 0 < len(r) < self.n_ctx]
        for i in set(range(len(rows))) - set(fits):
            out[i] = ValueError(f"prompt of {len(rows[i])} tokens exceeds the judge's n_ctx {self.n_ctx}")
        if not fits:
            return out
        good = [list(rows[i]) for i in fits]
        shared = common_prefix_length(good)
        self._extend_prefix(good[0][:shared])
        self.tokens_reused += shared * (len(good) - 1)  # every further row reads the prefix from the cache
        cols = None if columns is None else np.asarray(columns)
        lc = self._lc
        for group in plan_groups([len(r) - shared for r in good], shared, self.n_ctx, self.n_seq):
            entries = []
            owner: dict[int, int] = {}
            for slot, g in enumerate(group, start=1):
                if shared:
                    lc.llama_memory_seq_cp(self._mem, 0, slot, 0, shared)
                tail = good[g][shared:]
                for k, tok in enumerate(tail):
                    last = k == len(tail) - 1
                    if last:
                        owner[len(entries)] = g
                    entries.append((tok, shared + k, slot, last))
                self.tokens_evaluated += len(tail)

            def keep(entry_index: int, batch_index: int) -> None:
                logits = self._logits(batch_index)
                row = fits[owner[entry_index]]
                out[row] = (logits[cols] if cols is not None else logits).astype(np.float64, copy=True)

            try:
                self._decode(entries, keep)
            finally:
                for slot in range(1, len(group) + 1):
                    lc.llama_memory_seq_rm(self._mem, slot, -1, -1)
        return out

    def _extend_prefix(self, prefix: list[int]) -> None:
        """Make sequence 0 hold exactly ``prefix``, evaluating only what the cache lacks."""
        keep = 0
        for a, b in zip(self._cached, prefix):
            if a != b:
                break
            keep += 1
        if keep < len(self._cached):
            self._lc.llama_memory_seq_rm(self._mem, 0, keep, -1)
            self._cached = self._cached[:keep]
        todo = prefix[keep:]
        if todo:
            self._decode([(tok, keep + k, 0, False) for k, tok in enumerate(todo)], lambda *_: None)
        self._cached = list(prefix)
        self.tokens_reused += keep
        self.tokens_evaluated += len(todo)

    def close(self) -> None:
        if self._ctx:
            self._lc.llama_batch_free(self._batch)
            self._lc.llama_free(self._ctx)
            self._ctx = None
