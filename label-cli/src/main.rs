//! `label-cli`: the command-line client of the label-service's JSON API. Everything lives in
//! the library; this only hands over the process's exit code.

fn main() -> std::process::ExitCode {
    label_cli::main()
}
