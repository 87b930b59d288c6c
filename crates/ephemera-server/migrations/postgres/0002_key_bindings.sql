-- Sender-constrained tokens: the key a token is bound to (RFC 9449 `jkt`,
-- RFC 8705 `x5t#S256`), and the replay cache of proof and assertion `jti`s.

ALTER TABLE tokens ADD COLUMN jkt TEXT;
ALTER TABLE tokens ADD COLUMN x5t TEXT;

CREATE TABLE seen_jtis (
    key        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX seen_jtis_expires_at ON seen_jtis (expires_at);
