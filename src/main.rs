//! The `fixahead` binary: parses the command line and calls the crate that does the
//! work (`server` for the product's commands, `bench` for benchmarks).

/// mimalloc instead of the system allocator: scoring builds a few small strings per
/// prediction and ingest a few per message; measured in docs/benchmarks.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;

use std::process::ExitCode;

use clap::Parser;
use server::commands;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fixahead")
        .build()?;
    use cli::Command;
    match cli.command {
        Command::Run(args) => runtime.block_on(commands::run(args))?,
        Command::Demo(args) => runtime.block_on(commands::demo(args))?,
        Command::Simulate(args) => runtime.block_on(commands::simulate(args))?,
        Command::SimulateService(args) => runtime.block_on(commands::simulate_service(args))?,
        Command::Replay(args) => runtime.block_on(commands::replay(args))?,
        Command::Bench(command) => runtime.block_on(bench::run(command))?,
        Command::Train(args) => commands::train(args)?,
        Command::Eval(args) => commands::eval(args)?,
        Command::Predict(args) => commands::predict(args)?,
        Command::Devices(args) => commands::devices(args)?,
        Command::Keys(args) => commands::keys(args)?,
        Command::Users(args) => commands::users(args)?,
    }
    Ok(())
}

/// The error and its causes joined by `: `, each said once.
///
/// Most of the crates' errors say their cause in their own message and also hand it
/// out as `source` (thiserror does both for a field named `source`), so `{e:#}` would
/// print a cause twice or three times; a cause whose text is already said is skipped.
fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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
