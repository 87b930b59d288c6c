-- People as OpenID Connect sees them: the standard claims of a user's
-- record (JSON, model::UserClaims), how each session signed in (JSON,
-- model::SignIn; NULL for sessions from before, which were local
-- passwords), and identities at upstream providers, keyed by the
-- provider's issuer and subject. A user without a local password keeps ''
-- as its hash.
ALTER TABLE users ADD COLUMN claims TEXT NOT NULL DEFAULT '{}';
ALTER TABLE sessions ADD COLUMN sign_in TEXT;
CREATE TABLE upstream_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX upstream_identities_user ON upstream_identities (user_id);
