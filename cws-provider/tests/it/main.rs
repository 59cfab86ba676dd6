mod wrappers;
