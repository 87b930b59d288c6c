//! The `ephemera` binary: a shell around [`ephemera_server::cli::run`].

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ephemera_server::cli::run().await
}
