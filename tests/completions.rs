//! `keyshift completions SHELL` prints a completion script that knows every command.

mod common;

use common::keyshift;

#[test]
fn completion_scripts_name_every_command() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef keyshift"),
        ("fish", "complete -c keyshift"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = keyshift().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell} script lacks {marker:?}");
        for command in [
            "export", "plan", "apply", "verify", "cutover", "rollback", "handover",
        ] {
            assert!(script.contains(command), "{shell} script lacks {command}");
        }
    }
    let bad = keyshift().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}
