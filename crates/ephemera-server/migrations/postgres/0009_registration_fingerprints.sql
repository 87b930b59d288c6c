-- A public client that registers again with the same metadata from the same
-- address (clients that register on every connect) is the same client: the
-- fingerprint of its registration finds it (service/register.rs).
ALTER TABLE clients ADD COLUMN fingerprint BYTEA;
CREATE UNIQUE INDEX clients_fingerprint ON clients (fingerprint);
