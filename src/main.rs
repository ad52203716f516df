//! The `fixahead` binary: thin glue over the library crates.

/// mimalloc instead of the system allocator: scoring builds a few small strings per
/// prediction and ingest a few per message; measured in docs/benchmarks.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod app;
mod bench;
mod bench_fleet;
mod bench_ingest;
mod bench_insight;
mod cli;
mod commands;
mod config;
mod devices;
mod feedback;
mod insight;
mod keys;
mod scoring;
mod simulate;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fixahead")
        .build()?;
    match cli.command {
        cli::Command::Run(args) => runtime.block_on(commands::run(args)),
        cli::Command::Demo(args) => runtime.block_on(commands::demo(args)),
        cli::Command::Simulate(args) => runtime.block_on(simulate::simulate(args)),
        cli::Command::Replay(args) => runtime.block_on(simulate::replay(args)),
        cli::Command::Bench(command) => runtime.block_on(simulate::bench(command)),
        cli::Command::Train(args) => commands::train(args),
        cli::Command::Eval(args) => commands::eval(args),
        cli::Command::Predict(args) => commands::predict(args),
        cli::Command::Devices(args) => devices::devices(args),
        cli::Command::Keys(args) => keys::keys(args),
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default level.
///
/// The embedded broker (rumqttd) is silent by default: it logs ordinary events such as
/// a client closing its socket, or our own start-up probe, as errors. Set
/// `RUST_LOG=info,rumqttd=warn` to see it.
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,rumqttd=off,rumqttc=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
