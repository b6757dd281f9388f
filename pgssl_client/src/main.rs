//! The `pgssl` command.
fn main() {
    eprintln!("pgssl: no command yet");
    std::process::exit(2);
}
