mod disk_cache;
mod wrappers;
