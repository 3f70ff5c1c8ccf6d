//! The `forge` binary: arguments in, exit code out. Everything else lives in the library.

fn main() {
    // A panic is a bug in forge; say so in one line instead of printing a Rust backtrace,
    // even when RUST_BACKTRACE is set.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("FATAL: forge crashed (this is a bug in forge, please report it): {info}");
    }));
    let code = forge::cli::run(std::env::args().collect());
    std::process::exit(code as i32);
}
