-- API tokens of `cws serve`. A token's secret is never stored: only the SHA-256 of the whole
-- secret (`cws_<id>_<64 hex digits>`), by which a request's token is found (see tokens.rs).
CREATE TABLE tokens (
    id              TEXT PRIMARY KEY,          -- t and 10 hex digits (not secret)
    secret_sha256   TEXT NOT NULL UNIQUE,      -- lowercase hex SHA-256 of the secret
    name            TEXT NOT NULL,             -- the identity it acts as
    email           TEXT NOT NULL,
    handle          TEXT NOT NULL,
    orgs            TEXT NOT NULL,             -- JSON array of organization names
    scope           TEXT NOT NULL CHECK (scope IN ('read', 'rate', 'publish', 'admin')),
    created_at      TEXT NOT NULL,
    expires_at      TEXT,                      -- NULL: never expires
    revoked_at      TEXT                       -- NULL: not revoked
);
CREATE INDEX tokens_created ON tokens (created_at);
