-- Orders as the orders-service stores them: normalized rows for search and integrity, plus
-- the raw payload as received, the canonical JSON the API serves, and its SHA-256 for
-- first-write-wins idempotency.
CREATE TABLE orders.orders (
    order_uid          TEXT        PRIMARY KEY CHECK (order_uid ~ '^[A-Za-z0-9_-]{1,64}$'),
    track_number       TEXT        NOT NULL CHECK (track_number <> ''),
    entry              TEXT        NOT NULL CHECK (entry <> ''),
    locale             TEXT        NOT NULL CHECK (locale <> ''),
    internal_signature TEXT        NOT NULL,
    customer_id        TEXT        NOT NULL CHECK (customer_id <> ''),
    delivery_service   TEXT        NOT NULL CHECK (delivery_service <> ''),
    shardkey           TEXT        NOT NULL,
    sm_id              BIGINT      NOT NULL CHECK (sm_id >= 0),
    date_created       TIMESTAMPTZ NOT NULL,
    oof_shard          TEXT        NOT NULL,
    raw_payload        JSONB       NOT NULL,
    canonical_json     BYTEA       NOT NULL,
    payload_sha256     BYTEA       NOT NULL CHECK (length(payload_sha256) = 32),
    ingested_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX orders_date_created_idx ON orders.orders (date_created DESC, order_uid DESC);

CREATE TABLE orders.deliveries (
    order_uid TEXT PRIMARY KEY REFERENCES orders.orders (order_uid) ON DELETE CASCADE,
    name      TEXT NOT NULL CHECK (name <> ''),
    phone     TEXT NOT NULL CHECK (phone <> ''),
    zip       TEXT NOT NULL,
    city      TEXT NOT NULL CHECK (city <> ''),
    address   TEXT NOT NULL CHECK (address <> ''),
    region    TEXT NOT NULL,
    email     TEXT NOT NULL
);

CREATE TABLE orders.payments (
    order_uid     TEXT   PRIMARY KEY REFERENCES orders.orders (order_uid) ON DELETE CASCADE,
    transaction   TEXT   NOT NULL CHECK (transaction <> ''),
    request_id    TEXT   NOT NULL,
    currency      TEXT   NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    provider      TEXT   NOT NULL CHECK (provider <> ''),
    amount        BIGINT NOT NULL CHECK (amount >= 0),
    payment_dt    BIGINT NOT NULL,
    bank          TEXT   NOT NULL,
    delivery_cost BIGINT NOT NULL CHECK (delivery_cost >= 0),
    goods_total   BIGINT NOT NULL CHECK (goods_total >= 0),
    custom_fee    BIGINT NOT NULL CHECK (custom_fee >= 0)
);

CREATE TABLE orders.items (
    order_uid    TEXT     NOT NULL REFERENCES orders.orders (order_uid) ON DELETE CASCADE,
    position     INTEGER  NOT NULL CHECK (position >= 0),
    chrt_id      BIGINT   NOT NULL CHECK (chrt_id >= 0),
    track_number TEXT     NOT NULL CHECK (track_number <> ''),
    price        BIGINT   NOT NULL CHECK (price >= 0),
    rid          TEXT     NOT NULL CHECK (rid <> ''),
    name         TEXT     NOT NULL CHECK (name <> ''),
    sale         BIGINT   NOT NULL CHECK (sale BETWEEN 0 AND 100),
    size         TEXT     NOT NULL,
    total_price  BIGINT   NOT NULL CHECK (total_price >= 0),
    nm_id        BIGINT   NOT NULL CHECK (nm_id >= 0),
    brand        TEXT     NOT NULL CHECK (brand <> ''),
    status       BIGINT   NOT NULL,
    PRIMARY KEY (order_uid, position)
);
