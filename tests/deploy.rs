//! The deploy artefacts hold together without a cluster, a container engine or a Prometheus
//! server (none can run on the CI machines): the Dockerfile passes hadolint, the Kubernetes
//! manifests validate strictly against the Kubernetes schemas, the alert rules and the dashboard
//! parse as PromQL, and the compose file mounts files that exist. Each check is also shown to
//! fail on a broken copy, so a pass means something. That the metrics they name exist is checked
//! against a live scrape in tests/run_command.rs.
//!
//! The checks run `tests/python/check_deploy.py` with the venv of
//! `scripts/requirements-deploy.txt` (`TRENDCAST_DEPLOY_PYTHON`, exported by `scripts/test.sh`).

mod common;

use std::path::Path;
use std::process::Command;

use common::root;

/// Runs one check of `check_deploy.py` on `target` (its default when `None`): (passed, output).
fn check(which: &str, target: Option<&Path>) -> (bool, String) {
    let python = std::env::var("TRENDCAST_DEPLOY_PYTHON").expect(
        "TRENDCAST_DEPLOY_PYTHON is not set: run the tests through scripts/test.sh \
         (scripts/env.sh ensure_deploy_python)",
    );
    let mut command = Command::new(python);
    command
        .current_dir(root())
        .arg("tests/python/check_deploy.py")
        .arg(which);
    if let Some(t) = target {
        command.arg(t);
    }
    let out = command.output().expect("run check_deploy.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A copy of the repository file `path` with `from` replaced by `to`, in `dir`.
fn broken_copy(dir: &Path, path: &str, from: &str, to: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(root().join(path)).expect("read");
    assert!(text.contains(from), "{path} no longer contains {from:?}");
    let name = Path::new(path).file_name().expect("file name");
    let copy = dir.join(name);
    std::fs::write(&copy, text.replacen(from, to, 1)).expect("write");
    copy
}

/// `which` passes on the repository's file `path`, and fails with `expected` in its output on a
/// copy with `from` replaced by `to`.
fn passes_and_a_broken_copy_fails(which: &str, path: &str, from: &str, to: &str, expected: &str) {
    let (ok, out) = check(which, None);
    assert!(ok, "{out}");
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = broken_copy(dir.path(), path, from, to);
    let (ok, out) = check(which, Some(&bad));
    assert!(!ok && out.contains(expected), "{out}");
}

#[test]
fn the_dockerfile_passes_hadolint_and_a_careless_one_does_not() {
    passes_and_a_broken_copy_fails(
        "dockerfile",
        "Dockerfile",
        "apt-get install -y --no-install-recommends",
        "apt-get install",
        "DL3014",
    );
}

#[test]
fn the_kubernetes_manifests_validate_strictly_and_a_misspelt_field_does_not() {
    let (ok, out) = check("k8s", None);
    assert!(ok, "{out}");
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(root().join("deploy/k8s")).expect("deploy/k8s") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    broken_copy(
        dir.path(),
        "deploy/k8s/statefulset.yaml",
        "  replicas: 3",
        "  replica: 3",
    );
    let (ok, out) = check("k8s", Some(dir.path()));
    assert!(!ok && out.contains("'replica' was unexpected"), "{out}");
}

#[test]
fn the_alert_rules_parse_and_a_broken_expression_does_not() {
    passes_and_a_broken_copy_fails(
        "rules",
        "deploy/prometheus/alerts.yml",
        "[15m]))) > 30",
        "[15m]))) >",
        "does not parse",
    );
}

#[test]
fn the_dashboard_queries_parse_and_a_broken_one_does_not() {
    passes_and_a_broken_copy_fails(
        "dashboard",
        "deploy/grafana/trendcast.json",
        "sum by (source) (rate(",
        "sum by (source) (rate((",
        "does not parse",
    );
}

#[test]
fn the_compose_file_mounts_files_that_exist() {
    let (ok, out) = check("compose", None);
    assert!(ok, "{out}");
    // a copy elsewhere mounts relative paths that are not there
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("docker-compose.yml");
    std::fs::copy(root().join("deploy/docker-compose.yml"), &copy).expect("copy");
    let (ok, out) = check("compose", Some(&copy));
    assert!(!ok && out.contains("does not exist"), "{out}");
}
