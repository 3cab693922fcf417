//! AFL++ entry point: `consentry-fuzz-afl <target>` runs one target of `tests/fuzz/targets.rs`
//! on the inputs AFL++ gives it (persistent mode); a panic is a crash AFL++ records.
//! `tests/fuzz/run.sh` builds and runs it when `cargo afl` is installed.

#[path = "../../targets.rs"]
mod targets;

fn main() {
    let target = std::env::args().nth(1).unwrap_or_default();
    if !targets::TARGETS.contains(&target.as_str()) {
        eprintln!("usage: consentry-fuzz-afl <target>; targets: {}", targets::TARGETS.join(" "));
        std::process::exit(2);
    }
    afl::fuzz!(|data: &[u8]| {
        targets::run_bytes(&target, data);
    });
}
