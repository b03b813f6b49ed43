"""How many rows of a table this transaction read: PostgreSQL's own per-transaction counters, so a test asserts
how much a statement read, not how long it took."""

from __future__ import annotations

# Run-queue rows read by the transaction so far, by index or by a sequential scan.
RUN_QUEUE_ROWS_READ = ("SELECT coalesce(sum(idx_tup_fetch), 0) + coalesce(sum(seq_tup_read), 0)"
                       " FROM pg_stat_xact_user_tables WHERE relid = 'vjm.run_queue'::regclass")
