//! Test support shared by `tests/`, `examples/` and `benches/` (feature `testkit`): a client
//! that plays the Secrets Store CSI Driver, fake Entra ID / Key Vault / IMDS / NMI servers, and
//! the HTTP client that reaches them through the provider's normal code path.

mod client;
mod driver;
pub mod fake;
pub mod material;
mod tls;
pub mod world;

pub use client::fake_http_client;
pub use driver::{DriverClient, KubeletAttributes, TestServer, free_port};
pub use fake::{Counts, EntraCall, FakeAzure, Fault, Stored, TENANT, Target, VaultHandle};
pub use world::{World, objects_yaml};
