-- Dynamically registered clients (RFC 7591/7592): the hash of their
-- registration access token, and when the sweeper may delete them.

ALTER TABLE clients ADD COLUMN registration_token_hash BYTEA;
ALTER TABLE clients ADD COLUMN expires_at BIGINT;
CREATE INDEX clients_expires_at ON clients (expires_at);
