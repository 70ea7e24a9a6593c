//! Rules of the core's shape that a compiler does not check, read from the
//! sources: the manager decides, then acts, on `&mut self` (no interior
//! mutability anywhere in the core), and `error` is a leaf (rustls style:
//! it imports nothing above it).

use std::fs;
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The lines of `path` that are code (not `//` comments).
fn code_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .map(String::from)
        .collect()
}

/// The crate modules `path`'s code names (`crate::time`, `crate::secret`, …).
fn crate_paths(path: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for line in code_lines(path) {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let end = after
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            found.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    found
}

#[test]
fn no_interior_mutability_in_the_core() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let offenders: Vec<String> = files
        .iter()
        .flat_map(|path| {
            fs::read_to_string(path)
                .unwrap()
                .lines()
                .enumerate()
                .filter(|(_, line)| line.contains("Cell"))
                .map(|(i, line)| format!("{}:{}: {}", path.display(), i + 1, line.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[test]
fn error_is_a_leaf() {
    // The leaf modules `error` may name: they name nothing of the crate.
    const LEAVES: [&str; 2] = ["time", "secret"];
    for leaf in LEAVES {
        let path = src().join(format!("{leaf}.rs"));
        assert_eq!(crate_paths(&path), Vec::<String>::new(), "{leaf}.rs");
    }
    let mut files = Vec::new();
    sources(&src().join("error"), &mut files);
    assert!(files.len() > 1, "error/ holds the module errors");
    for path in files {
        for module in crate_paths(&path) {
            assert!(
                LEAVES.contains(&module.as_str()),
                "{} names crate::{module}",
                path.display()
            );
        }
        // `super::` inside error/ stays inside error/ (its own test
        // module's `use super::*` names `error` itself).
        let is_mod = path.file_name().is_some_and(|n| n == "mod.rs");
        for line in code_lines(&path) {
            let line = line.trim();
            let above = line.contains("super::super")
                || (is_mod && line.contains("super::") && line != "use super::*;");
            assert!(!above, "{} reaches above error/: {line}", path.display());
        }
    }
}
