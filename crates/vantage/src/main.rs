//! The `vantage` command. Everything lives in the library half of this crate (`vantage::cli`) so the
//! integration tests run exactly what users run.

use std::process::ExitCode;

fn main() -> ExitCode {
    vantage::cli::main()
}
