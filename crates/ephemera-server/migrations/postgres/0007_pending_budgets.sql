-- A pending request is opened once: the interaction window starts at the
-- first page shown and is never extended by reloads. Front-channel requests
-- (stored from GET /authorize parameters) count against a budget of their
-- own, so unauthenticated browser traffic cannot use up the pushed requests'.
ALTER TABLE pushed_requests ADD COLUMN opened BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE pushed_requests ADD COLUMN front_channel BOOLEAN NOT NULL DEFAULT false;
