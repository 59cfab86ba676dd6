-- The registry's first schema on PostgreSQL: the tables, columns and meanings of
-- ../0001_registry.sql (the SQLite store's), in PostgreSQL types. Migrations are applied in
-- order, each once, in one transaction holding an advisory lock (see postgres.rs); never edit
-- a released migration, add the next one.
--
-- Times are RFC 3339 text in UTC with microseconds (`2025-03-01T12:00:00.000000Z`), as in
-- SQLite, so they order as text. Texts that are ordered or compared (ids, versions, regions,
-- times) use the "C" collation: byte order, as SQLite's, whatever the database's locale.
-- `seq` columns stand in for SQLite's rowid: the order rows were first inserted in.
CREATE TABLE listings (
    id              TEXT COLLATE "C" PRIMARY KEY,  -- publisher/slug
    seq             BIGSERIAL NOT NULL UNIQUE,
    publisher       TEXT COLLATE "C" NOT NULL,
    slug            TEXT COLLATE "C" NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL,
    category        TEXT COLLATE "C" NOT NULL,
    template        TEXT NOT NULL,
    visibility      TEXT NOT NULL,             -- public | community:NAME | institutional:ORG | private
    visibility_kind TEXT COLLATE "C" NOT NULL, -- public | community | institutional | private
    visibility_name TEXT COLLATE "C",          -- the community or organization
    creator         TEXT NOT NULL,             -- "name <email>" at first publish
    created_at      TEXT COLLATE "C" NOT NULL,
    updated_at      TEXT COLLATE "C" NOT NULL,
    -- Kept in the same transaction as the rows they summarize, so browse reads one table.
    latest_version  TEXT COLLATE "C",          -- newest version neither revoked nor quarantined
    latest_revoked  BOOLEAN NOT NULL DEFAULT FALSE,
    latest_quarantined BOOLEAN NOT NULL DEFAULT FALSE,
    rating_sum      BIGINT NOT NULL DEFAULT 0,
    rating_count    BIGINT NOT NULL DEFAULT 0,
    downloads       BIGINT NOT NULL DEFAULT 0,
    search_text     TEXT COLLATE "C" NOT NULL  -- lowercase id, name, description, category
);
CREATE INDEX listings_category ON listings (category);

CREATE TABLE versions (
    listing_id      TEXT COLLATE "C" NOT NULL REFERENCES listings (id),
    version         TEXT COLLATE "C" NOT NULL,
    revision        BIGINT NOT NULL,
    template_digest TEXT NOT NULL,
    notes           TEXT,
    speedup         DOUBLE PRECISION,
    created_at      TEXT COLLATE "C" NOT NULL,
    revoked_reason  TEXT,
    revoked_by      TEXT,
    revoked_at      TEXT COLLATE "C",
    quarantine_reason TEXT,
    quarantined_at  TEXT COLLATE "C",
    downloads       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (listing_id, version)
);

CREATE TABLE version_regions (
    listing_id      TEXT COLLATE "C" NOT NULL,
    version         TEXT COLLATE "C" NOT NULL,
    region          TEXT COLLATE "C" NOT NULL,
    ami_id          TEXT COLLATE "C" NOT NULL,
    architecture    TEXT NOT NULL,
    snapshot_ids    TEXT[] NOT NULL,
    size_gib        BIGINT,
    revision        BIGINT NOT NULL,           -- the version revision that added this region
    created_at      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (listing_id, version, region),
    FOREIGN KEY (listing_id, version) REFERENCES versions (listing_id, version)
);
CREATE INDEX version_regions_ami ON version_regions (ami_id);

CREATE TABLE channels (
    listing_id      TEXT COLLATE "C" NOT NULL REFERENCES listings (id),
    name            TEXT COLLATE "C" NOT NULL,
    version         TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (listing_id, name)
);

CREATE TABLE ratings (
    listing_id      TEXT COLLATE "C" NOT NULL REFERENCES listings (id),
    author          TEXT COLLATE "C" NOT NULL, -- handle
    seq             BIGSERIAL NOT NULL,
    stars           BIGINT NOT NULL CHECK (stars BETWEEN 1 AND 5),
    review          TEXT,
    created_at      TEXT COLLATE "C" NOT NULL,
    updated_at      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (listing_id, author)
);

CREATE TABLE downloads (
    listing_id      TEXT COLLATE "C" NOT NULL,
    version         TEXT COLLATE "C" NOT NULL,
    day             TEXT COLLATE "C" NOT NULL, -- YYYY-MM-DD (UTC)
    count           BIGINT NOT NULL,
    PRIMARY KEY (listing_id, version, day)
);

CREATE TABLE uses (
    listing_id      TEXT COLLATE "C" NOT NULL,
    handle          TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (listing_id, handle)
);

CREATE TABLE reports (
    listing_id      TEXT COLLATE "C" NOT NULL,
    version         TEXT COLLATE "C" NOT NULL,
    reporter        TEXT COLLATE "C" NOT NULL,
    reason          TEXT COLLATE "C" NOT NULL,
    message         TEXT,
    by_admin        BOOLEAN NOT NULL DEFAULT FALSE,
    cleared         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (listing_id, version, reporter, reason)
);
