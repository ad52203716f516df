//! The product's commands, one module each, as the binary calls them with their
//! parsed arguments ([`crate::cli`]).

pub mod demo;
pub mod devices;
pub mod keys;
pub mod run;
pub mod simulate;
pub mod train;

pub use demo::demo;
pub use devices::devices;
pub use keys::keys;
pub use run::{run, shutdown_signal};
pub use simulate::{replay, simulate};
pub use train::{eval, predict, train};
