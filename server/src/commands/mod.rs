//! The product's commands, one module each, as the binary calls them with their
//! parsed arguments ([`crate::cli`]).

pub mod demo;
pub mod devices;
pub mod keys;
pub mod run;
pub mod simulate;
pub mod simulate_service;
pub mod train;
pub mod users;

pub use demo::demo;
pub use devices::devices;
pub use keys::keys;
pub use run::{run, shutdown_signal};
pub use simulate::{replay, simulate};
pub use simulate_service::simulate_service;
pub use train::{eval, predict, train};
pub use users::users;

use std::path::{Path, PathBuf};

use crate::settings::ConfigFile;
use crate::Result;

/// The data directory of `keys`, `users` and `devices`: `--data-dir`, else the
/// configuration file's `data_dir`, else `./data`.
pub(crate) fn data_dir(config: Option<&Path>, data_dir: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = data_dir {
        return Ok(d.to_owned());
    }
    Ok(ConfigFile::load_or_default(config)?.data_dir)
}
