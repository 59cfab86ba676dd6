-- The registry's first schema. Migrations are applied in order, each once, inside one
-- write transaction (see sqlite.rs); never edit a released migration, add the next one.
CREATE TABLE listings (
    id              TEXT PRIMARY KEY,          -- publisher/slug
    publisher       TEXT NOT NULL,
    slug            TEXT NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL,
    category        TEXT NOT NULL,
    template        TEXT NOT NULL,
    visibility      TEXT NOT NULL,             -- public | community:NAME | institutional:ORG | private
    visibility_kind TEXT NOT NULL,             -- public | community | institutional | private
    visibility_name TEXT,                      -- the community or organization
    creator         TEXT NOT NULL,             -- "name <email>" at first publish
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    -- Kept in the same transaction as the rows they summarize, so browse reads one table.
    latest_version  TEXT,                      -- newest version neither revoked nor quarantined
    latest_revoked  INTEGER NOT NULL DEFAULT 0,
    latest_quarantined INTEGER NOT NULL DEFAULT 0,
    rating_sum      INTEGER NOT NULL DEFAULT 0,
    rating_count    INTEGER NOT NULL DEFAULT 0,
    downloads       INTEGER NOT NULL DEFAULT 0,
    search_text     TEXT NOT NULL              -- lowercase id, name, description, category
);
CREATE INDEX listings_category ON listings (category);

CREATE TABLE versions (
    listing_id      TEXT NOT NULL REFERENCES listings (id),
    version         TEXT NOT NULL,
    revision        INTEGER NOT NULL,
    template_digest TEXT NOT NULL,
    notes           TEXT,
    speedup         REAL,
    created_at      TEXT NOT NULL,
    revoked_reason  TEXT,
    revoked_by      TEXT,
    revoked_at      TEXT,
    quarantine_reason TEXT,
    quarantined_at  TEXT,
    downloads       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (listing_id, version)
);

CREATE TABLE version_regions (
    listing_id      TEXT NOT NULL,
    version         TEXT NOT NULL,
    region          TEXT NOT NULL,
    ami_id          TEXT NOT NULL,
    architecture    TEXT NOT NULL,
    snapshot_ids    TEXT NOT NULL,             -- JSON array
    size_gib        INTEGER,
    revision        INTEGER NOT NULL,          -- the version revision that added this region
    created_at      TEXT NOT NULL,
    PRIMARY KEY (listing_id, version, region),
    FOREIGN KEY (listing_id, version) REFERENCES versions (listing_id, version)
);
CREATE INDEX version_regions_ami ON version_regions (ami_id);

CREATE TABLE channels (
    listing_id      TEXT NOT NULL REFERENCES listings (id),
    name            TEXT NOT NULL,
    version         TEXT NOT NULL,
    PRIMARY KEY (listing_id, name)
);

CREATE TABLE ratings (
    listing_id      TEXT NOT NULL REFERENCES listings (id),
    author          TEXT NOT NULL,             -- handle
    stars           INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
    review          TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (listing_id, author)
);

CREATE TABLE downloads (
    listing_id      TEXT NOT NULL,
    version         TEXT NOT NULL,
    day             TEXT NOT NULL,             -- YYYY-MM-DD (UTC)
    count           INTEGER NOT NULL,
    PRIMARY KEY (listing_id, version, day)
);

CREATE TABLE uses (
    listing_id      TEXT NOT NULL,
    handle          TEXT NOT NULL,
    PRIMARY KEY (listing_id, handle)
);

CREATE TABLE reports (
    listing_id      TEXT NOT NULL,
    version         TEXT NOT NULL,
    reporter        TEXT NOT NULL,
    reason          TEXT NOT NULL,
    message         TEXT,
    by_admin        INTEGER NOT NULL DEFAULT 0,
    cleared         INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (listing_id, version, reporter, reason)
);
