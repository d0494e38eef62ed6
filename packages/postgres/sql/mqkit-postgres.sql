-- @mqkit/postgres schema (idempotent)
CREATE TABLE IF NOT EXISTS "public"."mqkit_outbox" (
  seq           bigserial   PRIMARY KEY,
  id            text        NOT NULL,
  topic         text        NOT NULL,
  key           text,
  headers       jsonb       NOT NULL DEFAULT '{}'::jsonb,
  body          bytea       NOT NULL,
  message_ts    bigint      NOT NULL,
  delay_ms      integer,
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  available_at  timestamptz NOT NULL DEFAULT '-infinity',
  attempts      integer     NOT NULL DEFAULT 0,
  claimed_until timestamptz,
  claimed_by    text,
  claim_token   text,
  last_error    text,
  published_at  timestamptz
) WITH (
  -- A queue table: room for HOT updates when a claim stamps claimed_until, and statistics kept
  -- fresh so the claim keeps its ordered index scan as the backlog grows and shrinks.
  fillfactor = 80,
  autovacuum_vacuum_scale_factor = 0.02,
  autovacuum_analyze_scale_factor = 0.02
);
-- Tables made before marks were fenced gain the claim token (a no-op otherwise).
ALTER TABLE "public"."mqkit_outbox" ADD COLUMN IF NOT EXISTS claim_token text;
-- What the relay scans: unpublished rows in order.
CREATE INDEX IF NOT EXISTS "mqkit_outbox_pending" ON "public"."mqkit_outbox" (seq) WHERE published_at IS NULL;
-- Per-key order checks.
CREATE INDEX IF NOT EXISTS "mqkit_outbox_pending_key" ON "public"."mqkit_outbox" (key, seq) WHERE published_at IS NULL AND key IS NOT NULL;
-- Rows that hold their key back (leased by a relay or waiting for a retry): a claim reads only these.
CREATE INDEX IF NOT EXISTS "mqkit_outbox_held" ON "public"."mqkit_outbox" (key, seq)
  WHERE published_at IS NULL AND key IS NOT NULL AND (claimed_until IS NOT NULL OR available_at > '-infinity');
-- Rows under a claim (a few batches at most): where a claim looks for lapsed ones.
CREATE INDEX IF NOT EXISTS "mqkit_outbox_claimed" ON "public"."mqkit_outbox" (seq) WHERE published_at IS NULL AND claim_token IS NOT NULL;
-- Cleanup of published rows.
CREATE INDEX IF NOT EXISTS "mqkit_outbox_published" ON "public"."mqkit_outbox" (published_at) WHERE published_at IS NOT NULL;

-- Rows that failed for good (the relay's maxAttempts), moved out of the outbox so they neither
-- hold their key back nor slow claims; replayDead moves them back under their seq.
CREATE TABLE IF NOT EXISTS "public"."mqkit_outbox_dead" (
  seq         bigint      PRIMARY KEY,
  id          text        NOT NULL,
  topic       text        NOT NULL,
  key         text,
  headers     jsonb       NOT NULL,
  body        bytea       NOT NULL,
  message_ts  bigint      NOT NULL,
  delay_ms    integer,
  created_at  timestamptz NOT NULL,
  attempts    integer     NOT NULL,
  last_error  text,
  dead_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One NOTIFY per inserting statement wakes idle relays; delivered on commit only, so a rolled-back
-- business transaction wakes nobody. Written as a trigger so ORMs inserting directly work too.
CREATE OR REPLACE FUNCTION "public"."mqkit_outbox_notify"() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_notify(TG_ARGV[0], '');
  RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS "mqkit_outbox_notify" ON "public"."mqkit_outbox";
CREATE TRIGGER "mqkit_outbox_notify" AFTER INSERT ON "public"."mqkit_outbox"
  FOR EACH STATEMENT EXECUTE FUNCTION "public"."mqkit_outbox_notify"('mqkit_outbox');

-- Dedup marks: 'done' rows are written in the handler's own transaction (exactly-once effects);
-- 'processing' rows are leases of the DedupStore protocol, fenced by their holder's token.
CREATE TABLE IF NOT EXISTS "public"."mqkit_processed" (
  key        text        PRIMARY KEY,
  state      text        NOT NULL CHECK (state IN ('processing', 'done')),
  expires_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  token      text
);
-- Tables created before leases were fenced gain the column (a no-op otherwise).
ALTER TABLE "public"."mqkit_processed" ADD COLUMN IF NOT EXISTS token text;
CREATE INDEX IF NOT EXISTS "mqkit_processed_expires" ON "public"."mqkit_processed" (expires_at);
