//! The `fly-machines-mcp` binary: a thin shell around [`fly_machines_mcp::cli`].

fn main() -> std::process::ExitCode {
    fly_machines_mcp::cli::main()
}
