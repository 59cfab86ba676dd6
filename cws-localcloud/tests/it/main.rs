mod concurrency;
mod conformance;
