-- Pending pushed requests are no longer stored in the database file: they
-- live in a temporary database private to the server process (see
-- store/sqlite.rs), so nothing about a pushed client is durable before the
-- user consents. Requests pending at the upgrade are dropped; clients push again.
DROP TABLE pushed_requests;
