-- Signed version documents: the newest signed revision of each version, its canonical JSON
-- document and the SSH signature over it (namespace cws-listing). As ../0002_signatures.sql.
ALTER TABLE versions ADD COLUMN signed_revision BIGINT;
ALTER TABLE versions ADD COLUMN signed_document TEXT;
ALTER TABLE versions ADD COLUMN signature TEXT;
-- The publisher's email at first publish: the principal a signature must be made by.
ALTER TABLE listings ADD COLUMN publisher_email TEXT NOT NULL DEFAULT '';
