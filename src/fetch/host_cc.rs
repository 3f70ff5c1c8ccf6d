//! The host's C/C++ compiler, as Bazel's auto-configured toolchain sees it: the environment
//! (`CC`, `CXX`, `PATH`) in; `@bazel_tools//tools/cpp:host_cc.bzl` out, a macro declaring
//! the `cc_toolchain_config` target that describes the compiler, its archiver and linker and
//! the directories it searches for `#include <...>`.
//!
//! Detection runs the compiler (`cc -E -xc++ - -v`), so its result is kept next to the
//! repository keyed by what decides it (the variables, the compiler's size and modification
//! time): an unchanged host costs a stat.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What was found on the host; `error` says why no compiler could be used.
#[derive(Debug, Default, PartialEq)]
pub struct HostCc {
    /// The C compiler, which also links (as in Bazel, adding `-lstdc++`).
    pub cc: String,
    /// The C++ compiler: `CXX`, or the C compiler.
    pub cxx: String,
    pub ar: String,
    pub ld: String,
    pub nm: String,
    pub objcopy: String,
    pub strip: String,
    /// `gcc` or `clang`, as `cc_toolchain.compiler` reports it.
    pub compiler: String,
    /// The directories searched for `#include <...>` in C and C++.
    pub builtin_include_directories: Vec<String>,
    /// Whether `ld.gold` is there: Bazel links with it when it is.
    pub use_gold: bool,
    pub error: Option<String>,
}

/// Finds `name` (a path, or a program name looked up on `PATH`).
fn which(name: &str, path_var: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The directories `compiler` searches for `<...>` includes in `language` (`c` or `c++`).
fn include_dirs(compiler: &Path, language: &str) -> Result<Vec<String>, String> {
    let output = Command::new(compiler)
        .args(["-E", &format!("-x{language}"), "-", "-v"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", compiler.display()))?;
    let text = String::from_utf8_lossy(&output.stderr);
    let mut dirs = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("#include <...> search starts here:") {
            inside = true;
        } else if line.starts_with("End of search list.") {
            break;
        } else if inside {
            // clang marks macOS framework directories; they are directories all the same.
            let dir = line.trim().trim_end_matches(" (framework directory)");
            let canonical = fs::canonicalize(dir)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| dir.to_owned());
            dirs.push(canonical);
        }
    }
    if !output.status.success() && dirs.is_empty() {
        return Err(format!(
            "{} -E -x{language} - -v failed: {}",
            compiler.display(),
            text.lines().last().unwrap_or("")
        ));
    }
    Ok(dirs)
}

/// Detects the host toolchain from `CC`, `CXX` and `PATH` (Bazel's order: `CC`, then `gcc`,
/// then `cc`).
pub fn detect(cc_var: Option<&str>, cxx_var: Option<&str>, path_var: &str) -> HostCc {
    let wanted: Vec<&str> = match cc_var.filter(|c| !c.is_empty()) {
        Some(cc) => vec![cc],
        None => vec!["gcc", "cc"],
    };
    let Some(cc) = wanted.iter().find_map(|n| which(n, path_var)) else {
        return HostCc {
            error: Some(format!(
                "no C/C++ compiler found: looked for {} (set CC to a compiler)",
                wanted.join(", then ")
            )),
            ..HostCc::default()
        };
    };
    let cxx = cxx_var
        .filter(|c| !c.is_empty())
        .and_then(|c| which(c, path_var))
        .unwrap_or_else(|| cc.clone());
    let tool = |name: &str| {
        which(name, path_var)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| format!("/usr/bin/{name}"))
    };
    let mut dirs = Vec::new();
    let mut error = None;
    for (compiler, language) in [(&cc, "c"), (&cxx, "c++")] {
        match include_dirs(compiler, language) {
            Ok(found) => {
                for d in found {
                    if !dirs.contains(&d) {
                        dirs.push(d);
                    }
                }
            }
            Err(e) => error = Some(e),
        }
    }
    let name = cc.file_name().map(|n| n.to_string_lossy().into_owned());
    let compiler = match name.as_deref() {
        Some(n) if n.contains("clang") => "clang",
        _ => "gcc",
    };
    HostCc {
        cc: cc.display().to_string(),
        cxx: cxx.display().to_string(),
        ar: tool("ar"),
        ld: tool("ld"),
        nm: tool("nm"),
        objcopy: tool("objcopy"),
        strip: tool("strip"),
        compiler: compiler.to_owned(),
        builtin_include_directories: dirs,
        use_gold: which("ld.gold", path_var).is_some(),
        error,
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

impl HostCc {
    /// `host_cc.bzl`: the macro `host_cc_toolchain_config(name)`.
    pub fn bzl(&self) -> String {
        let dirs: Vec<String> = self
            .builtin_include_directories
            .iter()
            .map(|d| format!("        {},\n", quoted(d)))
            .collect();
        format!(
            "# Generated by forge from the host's C/C++ compiler (CC, CXX, PATH).\n\
             load(\":cc_toolchain_config.bzl\", \"cc_toolchain_config\")\n\n\
             def host_cc_toolchain_config(name, **kwargs):\n\
             \x20   cc_toolchain_config(\n\
             \x20       name = name,\n\
             \x20       cc = {cc},\n\
             \x20       cxx = {cxx},\n\
             \x20       ar = {ar},\n\
             \x20       ld = {ld},\n\
             \x20       nm = {nm},\n\
             \x20       objcopy = {objcopy},\n\
             \x20       strip = {strip},\n\
             \x20       compiler = {compiler},\n\
             \x20       builtin_include_directories = [\n{dirs}        ],\n\
             \x20       use_gold = {gold},\n\
             \x20       detection_error = {error},\n\
             \x20       **kwargs\n\
             \x20   )\n",
            cc = quoted(&self.cc),
            cxx = quoted(&self.cxx),
            ar = quoted(&self.ar),
            ld = quoted(&self.ld),
            nm = quoted(&self.nm),
            objcopy = quoted(&self.objcopy),
            strip = quoted(&self.strip),
            compiler = quoted(&self.compiler),
            dirs = dirs.concat(),
            error = quoted(self.error.as_deref().unwrap_or("")),
            gold = if self.use_gold { "True" } else { "False" },
        )
    }
}

/// What decides detection: the variables and the compiler file they lead to.
fn detection_key(cc_var: Option<&str>, cxx_var: Option<&str>, path_var: &str) -> String {
    let stamp = |name: Option<&str>, fallback: &[&str]| -> String {
        let names: Vec<&str> = name.map(|n| vec![n]).unwrap_or_else(|| fallback.to_vec());
        names
            .iter()
            .find_map(|n| which(n, path_var))
            .and_then(|p| {
                let m = fs::metadata(&p).ok()?;
                let mtime = m
                    .modified()
                    .ok()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?;
                Some(format!("{}:{}:{}", p.display(), m.len(), mtime.as_nanos()))
            })
            .unwrap_or_default()
    };
    format!(
        "forge host cc 1\0{}\0{}\0{path_var}\0{}\0{}",
        cc_var.unwrap_or(""),
        cxx_var.unwrap_or(""),
        stamp(cc_var, &["gcc", "cc"]),
        stamp(cxx_var, &[]),
    )
}

/// `host_cc.bzl` for this process's environment, detected again only when the key stored
/// beside it in `cache_file` differs.
pub fn host_cc_bzl(cache_file: &Path) -> Vec<u8> {
    let cc_var = std::env::var("CC").ok();
    let cxx_var = std::env::var("CXX").ok();
    let path_var = std::env::var("PATH").unwrap_or_default();
    let key = detection_key(cc_var.as_deref(), cxx_var.as_deref(), &path_var);
    if let Ok(cached) = fs::read_to_string(cache_file)
        && let Some((k, content)) = cached.split_once("\n\u{1}\n")
        && k == key
    {
        return content.as_bytes().to_vec();
    }
    let content = detect(cc_var.as_deref(), cxx_var.as_deref(), &path_var).bzl();
    // Only a cache: a failed write means detecting again next time.
    let _ =
        crate::core::fs::write_atomic(cache_file, format!("{key}\n\u{1}\n{content}").as_bytes());
    content.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_compiler_is_an_error_naming_what_was_looked_for() {
        let found = detect(Some("no-such-compiler-xyz"), None, "/nonexistent");
        let error = found.error.clone().unwrap();
        assert!(error.contains("no-such-compiler-xyz"), "{error}");
        assert!(found.bzl().contains("no-such-compiler-xyz"));
    }

    #[test]
    fn the_host_compiler_and_its_include_directories_are_found() {
        let path = std::env::var("PATH").unwrap_or_default();
        let found = detect(None, None, &path);
        if found.error.is_some() {
            return; // a machine without a compiler: nothing to find
        }
        assert!(Path::new(&found.cc).is_file());
        assert!(
            found
                .builtin_include_directories
                .iter()
                .any(|d| Path::new(d).join("stdio.h").is_file()),
            "{:?}",
            found.builtin_include_directories
        );
    }
}
