-- RFC 8707 §2.2: an access token may be narrowed to some of its grant's
-- resources at the token endpoint. NULL: all of the grant's resources.
ALTER TABLE tokens ADD COLUMN audience TEXT;
