//! Compiles the fuzz targets' own code into `tests/fuzz_replay.rs`, so that
//! `cargo test` (stable, no libFuzzer) replays the committed seed corpora
//! through exactly what `cargo fuzz` runs.
//!
//! Each `fuzz/fuzz_targets/<name>.rs` listed in `fuzz/Cargo.toml` becomes a
//! module `<name>` of `$OUT_DIR/fuzz_targets.rs`: the file as it is, minus
//! its inner attributes and docs (`#![no_main]`, `//!`, which a module
//! cannot take) and its `use libfuzzer_sys::fuzz_target;` (the replay test
//! defines a `fuzz_target!` that decodes input as libfuzzer-sys 0.4 does).
//! Nothing else is changed: a target that does not fit this shape fails the
//! build, loudly.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fuzz = manifest.join("../fuzz");
    println!(
        "cargo:rerun-if-changed={}",
        fuzz.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        fuzz.join("Cargo.lock").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        fuzz.join("fuzz_targets").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        manifest.join("../Cargo.lock").display()
    );

    let cargo_toml = std::fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let mut targets = Vec::new();
    let mut name = None;
    for line in cargo_toml.lines().map(str::trim) {
        if line == "[[bin]]" {
            name = None;
        } else if let Some(value) = line.strip_prefix("name = ") {
            name = Some(value.trim_matches('"').to_owned());
        } else if let Some(value) = line.strip_prefix("path = ") {
            let path = value.trim_matches('"').to_owned();
            let name = name.take().expect("a [[bin]] name before its path");
            targets.push((name, path));
        }
    }
    assert!(!targets.is_empty(), "no [[bin]] targets in fuzz/Cargo.toml");

    let mut out = String::new();
    let mut names = Vec::new();
    for (name, path) in &targets {
        let source = std::fs::read_to_string(fuzz.join(path))
            .unwrap_or_else(|e| panic!("fuzz target {name} ({path}): {e}"));
        let mut body = String::new();
        let (mut no_main, mut uses) = (0, 0);
        for line in source.lines() {
            let trimmed = line.trim();
            if trimmed == "#![no_main]" {
                no_main += 1;
            } else if trimmed == "use libfuzzer_sys::fuzz_target;" {
                uses += 1;
            } else if trimmed.starts_with("//!") {
            } else if let Some(relative) = trimmed
                .strip_prefix("#[path = \"")
                .and_then(|rest| rest.strip_suffix("\"]"))
            {
                // A module the target includes by path (the reference
                // model): the path is relative to the target's folder.
                let target_dir = fuzz.join(path);
                let target_dir = target_dir.parent().expect("a fuzz target's folder");
                let included = target_dir.join(relative);
                println!("cargo:rerun-if-changed={}", included.display());
                let _ = writeln!(body, "#[path = {:?}]", included.display().to_string());
            } else {
                assert!(
                    !trimmed.starts_with("#!["),
                    "fuzz target {name}: inner attribute {trimmed:?} cannot be replayed"
                );
                body.push_str(line);
                body.push('\n');
            }
        }
        assert_eq!(
            (no_main, uses),
            (1, 1),
            "fuzz target {name}: expected `#![no_main]` and `use libfuzzer_sys::fuzz_target;` once each"
        );
        assert_eq!(
            body.matches("fuzz_target!(").count(),
            1,
            "fuzz target {name}: expected one fuzz_target! invocation"
        );
        writeln!(
            out,
            "#[allow(dead_code, missing_docs, unused_imports, clippy::all, clippy::pedantic)]\n\
             pub mod {name} {{\n{body}}}\n"
        )
        .unwrap();
        names.push(name.clone());
    }
    writeln!(out, "/// A replay: `false` when the bytes do not decode.").unwrap();
    writeln!(out, "pub type Replay = fn(&[u8]) -> bool;").unwrap();
    writeln!(out, "/// Every fuzz target: its name and its replay.").unwrap();
    writeln!(out, "pub const TARGETS: &[(&str, Replay)] = &[").unwrap();
    for name in &names {
        writeln!(out, "    ({name:?}, {name}::run),").unwrap();
    }
    writeln!(out, "];").unwrap();
    let out_dir = std::env::var("OUT_DIR").unwrap();
    std::fs::write(Path::new(&out_dir).join("fuzz_targets.rs"), out).unwrap();

    // The `arbitrary` version each lock file resolves: the seeds decode the
    // same way only with the same version.
    let version = |lock: &Path| {
        let text = std::fs::read_to_string(lock).unwrap_or_default();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line == "name = \"arbitrary\""
                && let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = "))
            {
                return v.trim_matches('"').to_owned();
            }
        }
        String::from("(none)")
    };
    println!(
        "cargo:rustc-env=FUZZ_LOCK_ARBITRARY={}",
        version(&fuzz.join("Cargo.lock"))
    );
    println!(
        "cargo:rustc-env=WORKSPACE_LOCK_ARBITRARY={}",
        version(&manifest.join("../Cargo.lock"))
    );
}
