-- The user who granted, as a column: a user's grants are listed on the
-- account page and revoked one at a time (service/grants.rs). Grants stored
-- before carry it only in their data.
ALTER TABLE grants ADD COLUMN subject TEXT;
UPDATE grants SET subject = json_extract(data, '$.subject');
CREATE INDEX grants_subject ON grants (subject);
