//! cws-api's tests, through real HTTP on ephemeral loopback ports (one test binary).

mod conformance;
mod harness;
mod openapi;
mod routes;
