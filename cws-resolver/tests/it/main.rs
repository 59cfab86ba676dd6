mod oracle;
mod resolve_local;
mod tiers_mock;
mod wrappers_resolution;
