//! What one command does, for any front end: options as plain data in, results and
//! `Failure`s out. `cli` parses flags, calls one function here per step and prints; an LSP,
//! a remote worker or a server would call the same functions.
//!
//! - `plan`: patterns → graph → analysis → `BuildPlan`, reused through the plan cache.
//! - `build`: a plan run: exec root, runfiles trees, sandbox runner, execution, links.
//! - `test`: which planned tests run (tag and size filters), their options, the summary.
//! - `fetch`: external repositories loaded ahead of a build; Ctrl-C during loading.
//! - `query`: an expression evaluated over the loaded graph, the result written out.
//! - `cquery`: an expression evaluated over the configured graph, the result written out.
//! - `explain`: the `--explain` file, and `forge why`: what changed since an action last ran.
//! - `aquery`: the planned actions of the targets an expression names, filtered.
//! - `run`: the one built executable, its runfiles and arguments.
//! - `clean`, `info`: the output base removed; the facts `forge info` prints.
//! - `worker`: `forge worker`, a Remote Workers API bot running actions in the sandbox.

use std::collections::BTreeMap;

use crate::core::{Diagnostic, ExitCode, Failure};

pub mod aquery;
pub mod build;
pub mod build_entry;
pub mod clean;
pub mod compdb;
pub mod cquery;
pub mod explain;
pub mod fetch;
pub mod info;
pub mod plan;
mod plan_cutoff;
pub mod platforms;
pub mod query;
pub mod run;
pub mod test;
pub mod worker;

/// A diagnostic about the command line (a bad pattern, a bad expression) as the failure it
/// causes, exit code 2, keeping its location and notes.
pub fn usage(diagnostic: Diagnostic) -> Failure {
    Failure {
        code: ExitCode::BadCommandLine,
        errors: vec![diagnostic],
    }
}

/// `NAME=VALUE` items (`--action_env`, `--define`, `--test_env`) as a map; with `from_env`, a
/// bare `NAME` takes the variable's value from forge's environment (and is left out when
/// unset). `what` names the flag in the error.
pub fn key_values(
    items: &[String],
    what: &str,
    from_env: bool,
) -> Result<BTreeMap<String, String>, Failure> {
    let mut map = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                map.insert(k.to_owned(), v.to_owned());
            }
            None if from_env && !item.is_empty() => {
                if let Ok(v) = std::env::var(item) {
                    map.insert(item.clone(), v);
                }
            }
            _ => {
                return Err(Failure::usage(format!(
                    "--{what} expects NAME=VALUE, got '{item}'"
                )));
            }
        }
    }
    Ok(map)
}

/// `1 target`, `2 targets`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_split_on_the_first_equals_sign() {
        let items = vec!["A=1".to_owned(), "B=x=y".to_owned(), "C=".to_owned()];
        let map = key_values(&items, "define", false).expect("valid");
        assert_eq!(map.get("A").map(String::as_str), Some("1"));
        assert_eq!(map.get("B").map(String::as_str), Some("x=y"));
        assert_eq!(map.get("C").map(String::as_str), Some(""));
    }

    #[test]
    fn key_values_reject_a_bare_name_unless_taken_from_the_environment() {
        let failure = key_values(&["NAME".to_owned()], "define", false).expect_err("bare");
        assert_eq!(
            failure.errors[0].message,
            "--define expects NAME=VALUE, got 'NAME'"
        );
        let unset = "FORGE_OPS_TEST_SURELY_UNSET_VARIABLE".to_owned();
        let map = key_values(&[unset], "action_env", true).expect("valid");
        assert!(map.is_empty());
        assert!(key_values(&["=v".to_owned()], "test_env", true).is_err());
    }

    #[test]
    fn plural_picks_the_form_by_count() {
        assert_eq!(plural(1, "target", "targets"), "1 target");
        assert_eq!(plural(0, "target", "targets"), "0 targets");
        assert_eq!(plural(2, "package", "packages"), "2 packages");
    }
}
