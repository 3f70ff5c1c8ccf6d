//! Build settings on the command line: the arguments of `forge build|test|run` in, the
//! `--//pkg:flag=value`, `--//pkg:flag`, `--no//pkg:flag` and `--@repo//pkg:flag=value`
//! among them taken out (clap would call them unknown options) and kept, in order, for the
//! build request; what they mean is decided in analysis, where the settings' types are known.

use std::sync::OnceLock;

/// The build-setting arguments of this command, as given (one command per process).
static GIVEN: OnceLock<Vec<String>> = OnceLock::new();

/// Commands whose build reads build settings.
const BUILDING: &[&str] = &["build", "test", "run"];

/// Whether `arg` names a build setting: `--//x`, `--@r//x`, `--no//x`, `--no@r//x` (rc files
/// check their options with it too: such a word is no option clap knows).
pub fn is_setting(arg: &str) -> bool {
    let Some(rest) = arg.strip_prefix("--") else {
        return false;
    };
    let rest = rest.strip_prefix("no").unwrap_or(rest);
    rest.starts_with("//") || rest.starts_with('@')
}

/// `args` without the build-setting arguments of a building command, which are kept for
/// `given`. Arguments after `--` (a program's, for `forge run`) are left alone, as is every
/// other command's line (clap refuses a build setting there).
pub fn extract(args: Vec<String>) -> Vec<String> {
    let (rest, settings) = split(args);
    let _ = GIVEN.set(settings);
    rest
}

fn split(args: Vec<String>) -> (Vec<String>, Vec<String>) {
    // The command is the first word that is not an option (startup options come first, and
    // take their value after `=` or as the next word).
    let mut command = None;
    let mut skip_value = false;
    for (i, arg) in args.iter().enumerate().skip(1) {
        if skip_value {
            skip_value = false;
        } else if arg.starts_with('-') {
            skip_value = !arg.contains('=');
        } else {
            command = Some(i);
            break;
        }
    }
    let Some(command) = command.filter(|&i| BUILDING.contains(&args[i].as_str())) else {
        return (args, Vec::new());
    };
    let mut rest = Vec::with_capacity(args.len());
    let mut settings = Vec::new();
    let mut after_dashes = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i > command && !after_dashes && is_setting(&arg) {
            settings.push(arg);
            continue;
        }
        after_dashes |= i > command && arg == "--";
        rest.push(arg);
    }
    (rest, settings)
}

/// The build-setting arguments `extract` took from this command's line.
pub fn given() -> Vec<String> {
    GIVEN.get().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn build_settings_of_a_building_command_are_taken_out_in_order() {
        let (rest, settings) = split(words(
            "forge --output_base /o build --//a:b=1 //x --no//a:c --@r//d:e=z -k",
        ));
        assert_eq!(rest, words("forge --output_base /o build //x -k"));
        assert_eq!(settings, words("--//a:b=1 --no//a:c --@r//d:e=z"));
    }

    #[test]
    fn a_programs_arguments_and_other_commands_are_left_alone() {
        let (rest, settings) = split(words("forge run //x --//a:b -- --//a:c"));
        assert_eq!(rest, words("forge run //x -- --//a:c"));
        assert_eq!(settings, words("--//a:b"));
        let (rest, settings) = split(words("forge query --//a:b //x"));
        assert_eq!(rest, words("forge query --//a:b //x"));
        assert!(settings.is_empty());
        // `--no_x` and `--nokeep_going` are ordinary options.
        assert!(!is_setting("--nokeep_going") && !is_setting("--define=a=b"));
    }
}
