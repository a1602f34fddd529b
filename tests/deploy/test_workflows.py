"""The GitHub Actions workflows: actionlint (with shellcheck on every run step) is clean, and the
triggers, permissions, pinning and secret handling are what the deployment depends on."""

import re
import subprocess

import pytest
import yaml

from conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ["ci", "publish", "deploy", "drift-monitoring", "retrain-and-deploy"]


def load(name):
    wf = yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())
    wf["on"] = wf.pop(True)  # YAML 1.1 reads the key `on` as true
    return wf


def test_actionlint_is_clean():
    out = subprocess.run(["actionlint", "-no-color"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert subprocess.run(["shellcheck", "--version"], capture_output=True).returncode == 0, \
        "actionlint runs shellcheck on run steps only when it is installed"


@pytest.mark.parametrize("name", NAMES)
def test_pinned_least_privilege_and_no_literal_secrets(name):
    text = (WORKFLOWS / f"{name}.yml").read_text()
    wf = load(name)
    assert wf["permissions"] == {"contents": "read"}, "read-only unless a job asks for more"
    for use in re.findall(r"uses:\s*(\S+)", text):
        if not use.startswith("./"):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", use), f"{use} is not pinned to a commit"
    for job, spec in wf["jobs"].items():
        for perm, level in (spec.get("permissions") or {}).items():
            if level == "write":
                assert (perm, name, job) in {("packages", "publish", "image"), ("packages", "publish", "charts"),
                                             ("packages", "deploy", "image"), ("contents", "drift-monitoring", "dispatch")}, \
                    f"{name}/{job} asks for {perm}: write"
    # Credentials come from secrets.* only.
    assert not re.search(r"(ghp_|github_pat_|AKIA[0-9A-Z]{16}|password:\s*[^$\s{])", text)
    for m in re.finditer(r"(password|token|KUBECONFIG_BASE64)\s*[:=]\s*(\S.*)$", text, re.I | re.M):
        value = m.group(2)
        if value.startswith("${{"):
            assert "secrets." in value or "steps." in value or "env." in value, m.group(0)


def test_triggers():
    assert load("ci")["on"].keys() >= {"push", "pull_request", "workflow_call"}
    assert load("publish")["on"] == {"push": {"tags": ["v*"]}}
    deploy = load("deploy")
    assert deploy["on"]["push"] == {"branches": ["main"]}
    assert deploy["jobs"]["test"]["uses"] == "./.github/workflows/ci.yml"
    drift = load("drift-monitoring")
    assert drift["on"]["schedule"] == [{"cron": "0 2 * * *"}] and "workflow_dispatch" in drift["on"]
    retrain = load("retrain-and-deploy")
    assert retrain["on"]["repository_dispatch"] == {"types": ["drift-detected"]}
    assert "workflow_dispatch" in retrain["on"]


def test_deploy_sets_the_image_waits_for_the_rollout_and_checks_health():
    text = (WORKFLOWS / "deploy.yml").read_text()
    wf = load("deploy")
    assert wf["jobs"]["image"]["needs"] == "test" and wf["jobs"]["deploy"]["needs"] == "image"
    assert "secrets.KUBECONFIG_BASE64" in text
    for step in ("kubectl -n \"$NAMESPACE\" set image", "rollout status", "/health", "rollout undo"):
        assert step in text, step


def test_drift_monitoring_dispatches_on_significant_drift_only():
    wf = load("drift-monitoring")
    dispatch = wf["jobs"]["dispatch"]
    assert dispatch["if"] == "needs.drift.outputs.significant == 'true'"
    run = dispatch["steps"][0]["run"]
    assert "event_type=drift-detected" in run and "dispatches" in run
    assert any("upload-artifact" in s.get("uses", "") for s in wf["jobs"]["drift"]["steps"])
    # The cycle it runs is the stack's CronJob.
    assert "app.kubernetes.io/component=drift-loop" in (WORKFLOWS / "drift-monitoring.yml").read_text()


def test_retrain_trains_compares_promotes_and_rolls_out():
    text = (WORKFLOWS / "retrain-and-deploy.yml").read_text()
    for piece in ("--compare-with prod", "--promote", "switch --to", "--expect-version", "model_version"):
        assert piece in text, piece
