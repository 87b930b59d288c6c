-- Sign-ins through an upstream identity provider between the redirect to it
-- and its callback: keyed by the SHA-256 of `state`, bound to the browser
-- by the SHA-256 of a value derived from its cookie, with where the browser
-- returns sealed with a key derived from that cookie (it holds a
-- request_uri). Taken once by the callback; expired rows are swept.
CREATE TABLE upstream_logins (
    state_hash   BLOB PRIMARY KEY,
    browser_hash BLOB NOT NULL,
    provider     TEXT NOT NULL,
    return_to    TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX upstream_logins_expires_at ON upstream_logins (expires_at);
