//! Collecting outputs: a finished command's sandbox root in, its declared outputs copied into
//! the real exec root out — resolved inside the sandbox, never followed on the host.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::*;

/// Why a command that exited 0 still failed: its outputs could not be taken out.
#[derive(Debug, thiserror::Error)]
pub(super) enum CollectError {
    #[error("cannot read the outputs in the sandbox: {0}")]
    ReadRoot(#[source] io::Error),
    #[error("cannot copy output '{output}' out of the sandbox: {source}")]
    Copy {
        output: String,
        #[source]
        source: io::Error,
    },
    /// An output that is not what a command may leave; `Refused::describe`'s words, naming it.
    #[error("{0}")]
    Refused(String),
}

impl SandboxRunner {
    /// Copies the declared outputs from the sandbox into the exec root. A missing output is
    /// left for the executor to report. Nothing is followed on the host: a symlink among the
    /// outputs is resolved hop by hop inside the sandbox's exec root (to another output or a
    /// declared input, copied), and one that leads out of it, a FIFO, socket or device is a
    /// violation naming the output.
    pub(super) fn collect(
        &self,
        inner: &Path,
        action: &crate::core::Action,
        exec_root: &Path,
    ) -> Result<(), CollectError> {
        use crate::exec::confine::{ExecRoot, Found, Refused, Want, write_copy};
        let seen = PathBuf::from(format!("{INNER_EXEC_ROOT}/{}", self.config.workspace_name));
        let inputs = action.inputs.flatten();
        let root = ExecRoot::new(inner, exec_root, &seen, &inputs, &action.outputs)
            .map_err(CollectError::ReadRoot)?;
        for out in &action.outputs {
            let to = exec_root.join(out);
            // A declared file the command made a directory (not a link to one) is taken out
            // as a tree, like a declared directory; the executor keeps it as one.
            let made_a_directory = fs::symlink_metadata(inner.join(out)).is_ok_and(|m| m.is_dir());
            if action.directory_outputs.contains(out) || made_a_directory {
                match root.tree(out, Some(&to)) {
                    Ok(()) | Err((None, Refused::Missing)) => {}
                    Err((None, e)) => {
                        let _ = fs::remove_dir_all(&to);
                        return Err(CollectError::Refused(
                            e.describe(&format!("declared output '{out}'")),
                        ));
                    }
                    Err((Some(entry), e)) => {
                        // Not half a tree: nothing of it is kept.
                        let _ = fs::remove_dir_all(&to);
                        let what = match made_a_directory && !action.directory_outputs.contains(out)
                        {
                            true => format!(
                                "'{entry}' in declared output '{out}' (a directory the command made)"
                            ),
                            false => format!("'{entry}' in declared directory output '{out}'"),
                        };
                        return Err(CollectError::Refused(e.describe(&what)));
                    }
                }
                continue;
            }
            match root.open(out, Want::File) {
                Ok(Found::File(mut file, mode)) => {
                    write_copy(&mut file, mode, &to).map_err(|source| CollectError::Copy {
                        output: out.to_string(),
                        source,
                    })?
                }
                Ok(Found::Dir(_)) => {}
                Err(Refused::Missing) => {}
                Err(e) => {
                    return Err(CollectError::Refused(
                        e.describe(&format!("declared output '{out}'")),
                    ));
                }
            }
        }
        Ok(())
    }
}
