//! `run`: a built plan of one target in; the program to start, its runfiles tree, the
//! directory to start it in and its arguments out (or why the target cannot be run), with
//! the files a build without the bytes left remote fetched.

use std::path::{Path, PathBuf};

use crate::analysis::plan::BuildPlan;
use crate::core::{ExecPath, Failure};
use crate::exec::remote_outputs::RemoteFiles;

/// How to start the one target `forge run` built.
#[derive(Debug, PartialEq, Eq)]
pub struct Program {
    pub program: PathBuf,
    /// `<program>.runfiles`.
    pub runfiles: String,
    /// The workspace's directory in the runfiles tree.
    pub cwd: PathBuf,
    /// The target's `args`, then the command line's.
    pub args: Vec<String>,
}

/// The program `target` names in `plan`: exactly one executable target.
pub fn program(
    plan: &BuildPlan,
    exec_root: &Path,
    workspace_name: &str,
    target: &str,
    extra_args: &[String],
) -> Result<Program, Failure> {
    if plan.targets.len() != 1 {
        return Err(Failure::usage(format!(
            "forge run needs exactly one target, but '{}' names {}",
            target,
            plan.targets.len()
        )));
    }
    let (label, planned) = plan.targets.iter().next().expect("one target");
    let Some(executable) = planned.executable.clone() else {
        return Err(Failure::usage(format!(
            "cannot run {label}: it is not executable (only *_binary, *_test and rules with executable = True are)"
        )));
    };
    let program = exec_root.join(&executable);
    let runfiles = format!("{}.runfiles", program.display());
    let cwd = Path::new(&runfiles).join(workspace_name);
    let mut argv: Vec<String> = planned.args.clone();
    argv.extend(extra_args.iter().cloned());
    Ok(Program {
        program,
        runfiles,
        cwd,
        args: argv,
    })
}

/// Fetches what `program` needs that a build without the bytes left remote: the program and
/// the files its runfiles tree links to.
pub fn fetch(
    files: &RemoteFiles,
    exec_root: &Path,
    output_base: &Path,
    program: &Program,
) -> Result<(), Failure> {
    let Ok(executable) = program.program.strip_prefix(exec_root) else {
        return Ok(());
    };
    let mut paths = vec![ExecPath::new(executable.to_string_lossy().into_owned())];
    paths.extend(
        files
            .runfiles_targets(exec_root, Path::new(&program.runfiles))
            .into_iter()
            .map(ExecPath::new),
    );
    crate::exec::fetch_remote_outputs(exec_root, &output_base.join("cache"), files, &paths)
        .map_err(|e| Failure::failed(format!("cannot fetch {}: {e}", executable.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::plan::PlannedTarget;
    use crate::core::{ExecPath, Label, PackageId};

    fn plan_of(executable: Option<&str>) -> BuildPlan {
        let mut plan = BuildPlan::default();
        let label = Label::parse("//app:main", &PackageId::default()).expect("label");
        plan.targets.insert(
            label,
            PlannedTarget {
                executable: executable.map(ExecPath::new),
                args: vec!["--from-build".to_owned()],
                ..PlannedTarget::default()
            },
        );
        plan
    }

    #[test]
    fn the_program_starts_in_its_runfiles_with_the_targets_args_first() {
        let plan = plan_of(Some("forge-out/bin/app/main"));
        let extra = vec!["x".to_owned()];
        let program = program(&plan, Path::new("/root"), "w", "//app:main", &extra).expect("ok");
        assert_eq!(program.program, Path::new("/root/forge-out/bin/app/main"));
        assert_eq!(program.runfiles, "/root/forge-out/bin/app/main.runfiles");
        assert_eq!(
            program.cwd,
            Path::new("/root/forge-out/bin/app/main.runfiles/w")
        );
        assert_eq!(program.args, ["--from-build", "x"]);
    }

    #[test]
    fn only_one_executable_target_can_run() {
        let failure = program(&plan_of(None), Path::new("/r"), "w", "//app:main", &[])
            .expect_err("not executable");
        assert!(failure.errors[0].message.contains("it is not executable"));
        let failure =
            program(&BuildPlan::default(), Path::new("/r"), "w", "//x/...", &[]).expect_err("none");
        assert_eq!(
            failure.errors[0].message,
            "forge run needs exactly one target, but '//x/...' names 0"
        );
    }
}
