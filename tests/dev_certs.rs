//! `serve` makes development certificates when none exist, also on a machine with a
//! kubeconfig, and not in a pod (where the certificate comes from a Secret).

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let started = Instant::now();
    for line in stdout.lines() {
        let line = line.unwrap();
        if line.contains("listening") {
            return child;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no `listening` line within a minute"
        );
    }
    stop(child);
    panic!("serve exited before listening");
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
