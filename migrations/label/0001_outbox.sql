-- The transactional outbox of the label-service: rows written in the same transaction as the
-- change that causes them, published to Kafka by platform::outbox's relay.
CREATE TABLE label.outbox (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic         TEXT        NOT NULL CHECK (topic <> ''),
    message_key   BYTEA,
    payload       BYTEA       NOT NULL,
    -- [{"name": ..., "value": ...}], including the W3C trace context of the writer.
    headers       JSONB       NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(headers) = 'array'),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    not_before    TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts      INTEGER     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error    TEXT,
    claimed_by    UUID,
    claimed_until TIMESTAMPTZ,
    sent_at       TIMESTAMPTZ
);

-- The relay's scan: due, unsent rows in id order.
CREATE INDEX outbox_due_idx ON label.outbox (not_before, id) WHERE sent_at IS NULL;
-- The purge of old sent rows.
CREATE INDEX outbox_sent_idx ON label.outbox (sent_at) WHERE sent_at IS NOT NULL;
