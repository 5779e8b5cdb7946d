//! Every command has `--help` with an example; output meant for scripts is clean: no
//! progress bar on a stderr that is not a terminal, JSON that parses, usage errors exit 2.

mod common;

use common::{build, kvtool, s, text};

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in ["inspect", "verify", "compact", "backup", "dump", "load"] {
        let (out, err, code) = text(&kvtool(&[cmd, "--help"]));
        assert_eq!(code, 0, "{cmd}: {err}");
        assert!(
            out.contains("Example"),
            "{cmd} --help has no example:\n{out}"
        );
        assert!(
            out.contains(&format!("kvtool {cmd}")),
            "{cmd} --help example does not show the command:\n{out}"
        );
    }
    let (out, _, _) = text(&kvtool(&["--help"]));
    assert!(out.contains("Exit status"), "{out}");
}

#[test]
fn no_progress_bar_when_stderr_is_not_a_terminal() {
    let d = tempfile::tempdir().unwrap();
    build(d.path());
    for args in [
        vec!["verify", s(d.path())],
        vec!["inspect", "--exact", s(d.path())],
        vec!["compact", s(d.path())],
    ] {
        let (_, err, code) = text(&kvtool(&args));
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(err, "", "{args:?} wrote to stderr");
    }
}

#[test]
fn every_command_speaks_json() {
    let d = tempfile::tempdir().unwrap();
    build(d.path());
    let dest = d.path().join("b");
    for args in [
        vec!["inspect", s(d.path())],
        vec!["verify", s(d.path())],
        vec!["compact", s(d.path())],
        vec!["backup", s(d.path()), s(&dest)],
    ] {
        let (v, code) = common::kvtool_json(&args);
        assert_eq!(code, 0, "{args:?}: {v:#}");
        assert!(v.is_object(), "{args:?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["compact"],
        vec!["backup", "only-one"],
        vec!["frobnicate"],
        vec!["compact", "--addr", "x:1", "dir"],
        vec!["compact", "d", "--level", "7"],
        vec!["compact", "d", "--range", "b", "a"],
        vec!["compact", "d", "--range", "\\q", "z"],
    ] {
        let (_, err, code) = text(&kvtool(&args));
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}
