-- Sign-ins through an upstream identity provider between the redirect to it
-- and its callback: keyed by the SHA-256 of `state`, bound to the browser
-- by the SHA-256 of a value derived from its cookie, with where the browser
-- returns sealed with a key derived from that cookie (it holds a
-- request_uri). Taken once by the callback; expired rows are swept. Short
-- lived, like pending requests: UNLOGGED (a crash forgets sign-ins in
-- flight, which start again).
CREATE UNLOGGED TABLE upstream_logins (
    state_hash   BYTEA PRIMARY KEY,
    browser_hash BYTEA NOT NULL,
    provider     TEXT NOT NULL,
    return_to    TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX upstream_logins_expires_at ON upstream_logins (expires_at);
