//! `serve` makes development certificates when none exist, also on a machine with a
//! kubeconfig, and not in a pod (where the certificate comes from a Secret) unless asked to.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Starts `serve` on ephemeral loopback ports with certificates expected in `dir`, a
/// kubeconfig naming an unreachable server, and `env` on top; returns once it logs that it
/// listens (certificates, if any, are made before that).
fn start(dir: &Path, env: &[(&str, &str)]) -> Child {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n\
         contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n\
         users:\n- name: u\n  user:\n    token: t\n",
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_rollout-guard"));
    command
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .arg("--tls-cert")
        .arg(dir.join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.join("tls.key"))
        .args(["--log-format", "json", "--shutdown-delay", "0s"])
        // Nothing of the caller's environment (`ROLLOUT_GUARD_*`, a pod's service variables).
        .env_clear()
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if line.contains("listening") {
                let _ = tx.send(());
                return;
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(60)).is_ok() {
        return child;
    }
    stop(child);
    panic!("serve did not log `listening` within a minute");
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn development_certificates_are_made_outside_a_pod_even_with_a_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let child = start(dir.path(), &[]);
    let made = dir.path().join("tls.crt").exists() && dir.path().join("tls.key").exists();
    stop(child);
    assert!(made, "no development certificates next to a kubeconfig");
}

#[test]
fn no_development_certificates_in_a_pod() {
    let dir = tempfile::tempdir().unwrap();
    let child = start(
        dir.path(),
        &[
            ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
            ("KUBERNETES_SERVICE_PORT", "1"),
        ],
    );
    let made = dir.path().join("tls.crt").exists() || dir.path().join("tls.key").exists();
    stop(child);
    assert!(!made, "development certificates made in a pod");
}

#[test]
fn an_explicit_flag_decides_in_a_pod_too() {
    let dir = tempfile::tempdir().unwrap();
    let child = start(
        dir.path(),
        &[
            ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
            ("KUBERNETES_SERVICE_PORT", "1"),
            ("ROLLOUT_GUARD_DEV_CERTS", "true"),
        ],
    );
    let made = dir.path().join("tls.crt").exists() && dir.path().join("tls.key").exists();
    stop(child);
    assert!(made, "`--dev-certs true` made no certificates in a pod");
}
