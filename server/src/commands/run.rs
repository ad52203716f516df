//! `fixahead run`: the pipeline until Ctrl-C or SIGTERM.

use crate::cli::RunArgs;
use crate::settings::{load_profiles, Broker, ConfigFile, Settings};
use crate::{admin_key, app, Result};

/// `fixahead run`
pub async fn run(args: RunArgs) -> Result<()> {
    let file = ConfigFile::load_or_default(args.serve.config.as_deref())?;
    let settings = Settings::build(file, &args.serve.overrides())?;
    let profiles = load_profiles(settings.profiles_dir.as_deref())?;
    let running = app::start(&settings, profiles).await?;
    admin_key::announce(&running.admin_key);
    println!("fixahead is running");
    println!(
        "  MQTT     {}   (topics fixahead/v1/{{device_id}}/telemetry|fault|status)",
        running.mqtt_addr
    );
    if let Broker::Embedded {
        allow_anonymous, ..
    } = settings.mqtt.broker
    {
        if allow_anonymous {
            println!("  devices  any client may connect (--allow-anonymous)");
        } else {
            println!("  devices  log in with credentials from `fixahead devices add DEVICE_ID`");
        }
    }
    println!(
        "  HTTP     http://{}/health; every other route needs an API key (docs at /docs)",
        running.http_addr
    );
    println!(
        "  console  {}   (accounts: `fixahead users add LOGIN --role planner`)",
        running.console_url
    );
    println!("  data     {}", settings.data_dir.display());
    let stop = running.stop_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("Shutting down: committing and acknowledging what was received");
        stop.cancel();
    });
    running.wait().await?;
    tracing::info!("Stopped cleanly");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
