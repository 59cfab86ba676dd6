//! # cws-util
//!
//! Small helpers every cws crate shares, in a leaf crate that depends on no other cws crate,
//! so the lowest crates (`cws-template`, `cws-regions`) can use them without depending on each
//! other:
//!
//! - [`fs`]: crash-safe file replacement and size-bounded reads (every file cws reads whole
//!   goes through [`fs::read_text_bounded`] or [`fs::read_bytes_bounded`], with a limit the
//!   reading crate documents);
//! - [`suggest`]: the one "did you mean" policy;
//! - [`duration`]: durations the way people write and read them;
//! - [`text`]: which characters of untrusted text are unsafe to show on a terminal.

#![deny(missing_docs)]

pub mod duration;
pub mod fs;
pub mod suggest;
pub mod text;
