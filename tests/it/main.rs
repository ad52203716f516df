//! End-to-end tests of the whole pipeline through its public interfaces: the
//! `fixahead` binary, a real MQTT connection over TCP, real SQLite files in a
//! temporary data directory, and the HTTP API.
//!
//! One test binary (matklad, "Delete Cargo Integration Tests"). Set `TEST_LOG=1` to
//! see the server's logs. Tests that need Debian services run only with
//! `FIXAHEAD_IT=1` (see DEVELOPERS.md). `architecture` checks ARCHITECTURE.md against
//! the tree.

mod api_security;
mod architecture;
mod archive;
mod bench_console;
mod bench_ingest;
mod browser;
mod console;
mod crash;
mod dead_letters;
mod device_auth;
mod diagnosis;
mod dispatch;
mod feedback;
mod fleet;
mod harness;
mod insight;
mod intake;
mod kpis;
mod models;
mod mosquitto;
mod mqtt5;
mod parity;
mod pipeline;
mod procedures;
mod restart;
mod service_simulation;
mod shared;
mod simulator;
mod swap;
mod tickets;
mod tls;
mod users;
mod webhooks;
