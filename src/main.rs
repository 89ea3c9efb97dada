//! kiln: atomic, image-based Linux. The CLI parses, calls a library, and renders.
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
