"""Linters over the deployment files: hadolint on the Dockerfile (each ignored rule is justified in
a comment), yamllint on the YAML we write, shellcheck on the shell scripts the charts ship."""

import re
import subprocess

from conftest import ROOT


def run(*args):
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True)


def test_hadolint_clean_and_every_ignore_justified():
    out = run("hadolint", "Dockerfile")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    for i, line in enumerate(lines):
        for rule in re.findall(r"hadolint ignore=([A-Z0-9,]+)", line):
            for r in rule.split(","):
                before = "\n".join(lines[max(0, i - 4):i])
                assert r in before and "ignored" in before, f"{r} is ignored without a reason"


def test_dockerfile_shape():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, re.M)
    assert stages == ["build", "ui", "onnxruntime", "runtime"]
    # ONNX models serve from the image: the runtime library is copied in and named by ORT_DYLIB_PATH.
    assert "COPY --from=onnxruntime /out/lib/libonnxruntime.so /usr/local/lib/libonnxruntime.so" in text
    assert re.search(r"^\s+ORT_DYLIB_PATH=/usr/local/lib/libonnxruntime.so", text, re.M)
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "HEALTHCHECK" in text and "org.opencontainers.image.source" in text
    assert 'ENTRYPOINT ["/usr/local/bin/factory"]' in text
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*")] == "*" and "!crates/" in ignore, "an allow-list context"


def test_yamllint():
    out = run("yamllint", "-s", "-c", "deploy/yamllint.yml", "deploy/compose", ".github", "deploy/yamllint.yml",
              *[str(p.relative_to(ROOT)) for p in (ROOT / "deploy/helm").glob("*/values.yaml")],
              *[str(p.relative_to(ROOT)) for p in (ROOT / "deploy/helm").glob("*/ci/*.yaml")],
              *[str(p.relative_to(ROOT)) for p in (ROOT / "deploy/helm").glob("*/Chart.yaml")])
    assert out.returncode == 0, out.stdout + out.stderr


def test_shellcheck():
    scripts = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "deploy").rglob("*.sh"))
    scripts.append("scripts/test-deploy.sh")
    out = run("shellcheck", *scripts)
    assert out.returncode == 0, out.stdout + out.stderr


def test_admin_openapi_documents_are_valid():
    """docs/openapi/*.json (generated from the admin-api crate's types; `cargo test -p admin-api`
    checks they are current) are valid OpenAPI 3.1 by an independent validator, and document every
    admin path."""
    import json

    from openapi_spec_validator import validate

    docs = {p.name: json.loads(p.read_text()) for p in sorted((ROOT / "docs" / "openapi").glob("*.json"))}
    assert set(docs) == {"gateway-admin.json", "serve-admin.json"}, docs.keys()
    for name, doc in docs.items():
        validate(doc)
    assert set(docs["gateway-admin.json"]["paths"]) == {
        "/status", "/switch", "/rollback", "/weights", "/shadow", "/canary", "/canary/abort", "/audit", "/metrics"
    }
    assert set(docs["serve-admin.json"]["paths"]) == {"/admin/reload"}
