//! Settings precedence through the real binary: flag > environment > file > default.

use std::process::Command;

fn print_config(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lowband-edge"));
    cmd.arg("serve").arg("--print-config").args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("LOWBAND_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn flag_over_environment_over_file_over_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:7001\"\nidle_timeout = 11\nheader_timeout = 12\nmax_connections = 13\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let (ok, out, err) = print_config(
        &["--config", file, "--idle-timeout", "21"],
        &[
            ("LOWBAND_IDLE_TIMEOUT", "31"),
            ("LOWBAND_HEADER_TIMEOUT", "32"),
        ],
    );
    assert!(ok, "{err}");
    let has = |line: &str| out.lines().any(|l| l == line);
    assert!(has("idle_timeout = 21"), "flag wins:\n{out}");
    assert!(
        has("header_timeout = 32"),
        "environment beats the file:\n{out}"
    );
    assert!(
        has("max_connections = 13"),
        "the file beats the default:\n{out}"
    );
    assert!(has("listen = \"127.0.0.1:7001\""), "{out}");
    assert!(has("max_requests_per_connection = 1000"), "default:\n{out}");

    // The config file itself can come from the environment.
    let (ok, out, _) = print_config(&[], &[("LOWBAND_CONFIG", file)]);
    assert!(
        ok && out.lines().any(|l| l == "max_connections = 13"),
        "{out}"
    );
}

#[test]
fn bad_settings_name_their_origin_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.toml");
    std::fs::write(&file, "idle_timeout = 5\nmax_conections = 10\n").unwrap();
    let (ok, _, err) = print_config(&["--config", file.to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(
        err.contains("edge.toml: max_conections: unknown field `max_conections`"),
        "{err}"
    );
    let (ok, _, err) = print_config(&["--max-header-bytes", "1000"], &[]);
    assert!(!ok);
    assert!(
        err.contains("command line or environment: max_header_bytes: 1000 is below"),
        "{err}"
    );
    let (ok, _, err) = print_config(
        &[
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ],
        &[],
    );
    assert!(!ok);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
}
