-- API tokens of `cws serve`. A token's secret is never stored: only the SHA-256 of the whole
-- secret (`cws_<id>_<64 hex digits>`), by which a request's token is found (see tokens.rs).
-- As ../0003_tokens.sql; `seq` stands in for SQLite's rowid (the order tokens were made in).
CREATE TABLE tokens (
    id              TEXT COLLATE "C" PRIMARY KEY,  -- t and 10 hex digits (not secret)
    seq             BIGSERIAL NOT NULL UNIQUE,
    secret_sha256   TEXT COLLATE "C" NOT NULL UNIQUE, -- lowercase hex SHA-256 of the secret
    name            TEXT NOT NULL,             -- the identity it acts as
    email           TEXT NOT NULL,
    handle          TEXT COLLATE "C" NOT NULL,
    orgs            TEXT[] NOT NULL,           -- organization names
    scope           TEXT COLLATE "C" NOT NULL CHECK (scope IN ('read', 'rate', 'publish', 'admin')),
    created_at      TEXT COLLATE "C" NOT NULL,
    expires_at      TEXT COLLATE "C",          -- NULL: never expires
    revoked_at      TEXT COLLATE "C"           -- NULL: not revoked
);
CREATE INDEX tokens_created ON tokens (created_at);
