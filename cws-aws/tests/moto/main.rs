//! Tests against moto, a local EC2 emulator (see `cws_aws::moto_harness`). One binary, so
//! the AWS SDK is linked once for all of them.

mod lifecycle;
mod provider;
