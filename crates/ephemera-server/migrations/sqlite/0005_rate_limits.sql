-- Per-address rate limits, shared by every node: a counter per key and
-- one-minute window.
CREATE TABLE rate_limits (
    key    TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count  INTEGER NOT NULL
);
CREATE INDEX rate_limits_window ON rate_limits (window_start);
