-- The event log (distributed mode).
--
-- Writers insert into `events` concurrently, each row stamped with its transaction id (xid8). A single
-- sequencer (whoever holds the advisory lock) later moves rows into the global order `event_log`, in
-- (txid, id) order, taking only rows whose transaction is older than the oldest transaction still in
-- flight (`pg_snapshot_xmin`). A transaction that commits late therefore can never put an event below a
-- position a reader has passed, without any writer lock and without skipping gaps on a timeout.
CREATE TABLE events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid            XID8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id        UUID        NOT NULL UNIQUE,
    stream          TEXT        NOT NULL,
    stream_version  BIGINT      NOT NULL,
    event_type      TEXT        NOT NULL,
    schema_version  INTEGER     NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    tenant          TEXT        NOT NULL,
    actor           TEXT        NOT NULL,
    request_id      TEXT,
    correlation_id  UUID        NOT NULL,
    causation_id    UUID,
    -- json, not jsonb: keeps the exact text that was hashed.
    payload         JSON        NOT NULL,
    content_hash    TEXT        NOT NULL,
    UNIQUE (stream, stream_version)
);
CREATE INDEX events_commit_order ON events (txid, id);

-- The global order and the hash chain, written only by the sequencer.
CREATE TABLE event_log (
    global_position BIGINT PRIMARY KEY,
    event_row       BIGINT NOT NULL UNIQUE REFERENCES events (id),
    prev_hash       TEXT   NOT NULL,
    hash            TEXT   NOT NULL
);

-- The sequencer's cursor: the last (txid, id) ordered, and the chain's head.
CREATE TABLE event_sequencer (
    singleton     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    last_txid     XID8    NOT NULL,
    last_row      BIGINT  NOT NULL,
    last_position BIGINT  NOT NULL,
    last_hash     TEXT    NOT NULL
);
INSERT INTO event_sequencer VALUES
    (TRUE, '0'::xid8, 0, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION vantage_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only';
END;
$$;
CREATE TRIGGER events_are_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION vantage_refuse_change();
CREATE TRIGGER event_log_is_append_only BEFORE UPDATE OR DELETE ON event_log
    FOR EACH ROW EXECUTE FUNCTION vantage_refuse_change();

CREATE TABLE idempotency_keys (
    tenant            TEXT        NOT NULL,
    key               TEXT        NOT NULL,
    request_hash      TEXT        NOT NULL,
    response_status   INTEGER,
    response_body     TEXT,
    response_location TEXT,
    claimed_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant, key)
);
