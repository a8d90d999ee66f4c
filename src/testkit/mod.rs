//! Test support shared by `tests/`, `examples/` and `benches/` (feature `testkit`): a client
//! that plays the Secrets Store CSI Driver, and helpers to build the requests kubelet produces.

mod driver;

pub use driver::{DriverClient, KubeletAttributes, TestServer};
