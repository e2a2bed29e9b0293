use clap::Parser;

/// mimalloc: the gateway path allocates many small, short-lived buffers; glibc's allocator
/// spent a tenth of a request's CPU on them and kept per-thread arenas resident.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = vorg::cli::Cli::parse();
    match vorg::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
