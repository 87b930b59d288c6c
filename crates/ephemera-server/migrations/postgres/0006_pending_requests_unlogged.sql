-- Pending pushed requests are not durable: an UNLOGGED table is not written
-- to the write-ahead log and is emptied by crash recovery, so nothing about
-- a pushed client survives a crash before the user consents.
ALTER TABLE pushed_requests SET UNLOGGED;
