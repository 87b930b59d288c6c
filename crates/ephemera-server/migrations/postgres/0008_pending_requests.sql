-- The table holds every pending authorization request, pushed (PAR) or
-- stored from front-channel parameters: its name says so now.
ALTER TABLE pushed_requests RENAME TO pending_requests;
ALTER INDEX pushed_requests_expires_at RENAME TO pending_requests_expires_at;
ALTER INDEX pushed_requests_pkey RENAME TO pending_requests_pkey;
