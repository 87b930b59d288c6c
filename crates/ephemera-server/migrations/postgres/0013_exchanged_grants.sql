-- A grant made by token exchange (RFC 8693) names the grant of its subject
-- token: deleting that grant (revocation, a replayed code or refresh token,
-- the user ending it, the sweeper) deletes this one and its tokens with it,
-- and so on down a chain of exchanges.
ALTER TABLE grants ADD COLUMN parent_id TEXT REFERENCES grants (id) ON DELETE CASCADE;
-- Only exchanged grants are indexed: the grants of every other request
-- (a client_credentials grant per token) add no index entry, and the
-- cascade's `parent_id = ?` lookup can still use it.
CREATE INDEX grants_parent_id ON grants (parent_id) WHERE parent_id IS NOT NULL;
