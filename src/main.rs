//! The thin binary: parse arguments, run, exit with the command's code.

use clap::Parser;

fn main() {
    let cli = keyshift::cli::Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(keyshift::run(cli, keyshift::context::Env::from_process()));
    // Do not wait for lingering tasks (e.g. a Ctrl-C listener).
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code.code());
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "keyshift=info",
        2 => "keyshift=debug",
        _ => "keyshift=trace,reqwest=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYSHIFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Log lines carry vendor text: control and hiding characters are shown, not sent (and so
    // the logs themselves are written without colour codes).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| keyshift::output::Visible(std::io::stderr()))
        .try_init();
}
