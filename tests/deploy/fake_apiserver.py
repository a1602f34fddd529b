"""A Kubernetes API server that knows only what `helm template --dry-run=server` asks: the version,
API discovery, and GET of Secrets (the answers of the charts' `lookup` calls). Lets the tests see
what the charts render on an upgrade, when the secrets they generated already exist."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# group/version -> [(resource, kind, namespaced)]
RESOURCES = {
    "v1": [("secrets", "Secret", True), ("configmaps", "ConfigMap", True), ("services", "Service", True),
           ("persistentvolumeclaims", "PersistentVolumeClaim", True), ("namespaces", "Namespace", False)],
    "apps/v1": [("deployments", "Deployment", True), ("statefulsets", "StatefulSet", True)],
    "batch/v1": [("jobs", "Job", True), ("cronjobs", "CronJob", True)],
    "networking.k8s.io/v1": [("ingresses", "Ingress", True), ("networkpolicies", "NetworkPolicy", True)],
    "autoscaling/v2": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "monitoring.coreos.com/v1": [("servicemonitors", "ServiceMonitor", True)],
}


class FakeApiServer:
    """`secrets`: {(namespace, name): secret object}. `requests` records every path asked."""

    def __init__(self, secrets=None):
        self.secrets = dict(secrets or {})
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                status, body = outer.answer(self.path.split("?")[0])
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, path):
        not_found = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
        if path == "/version":
            return 200, {"major": "1", "minor": "35", "gitVersion": "v1.35.0", "platform": "linux/amd64"}
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
        if path == "/apis":
            groups = {}
            for gv in RESOURCES:
                if "/" in gv:
                    g, v = gv.split("/")
                    groups.setdefault(g, []).append({"groupVersion": gv, "version": v})
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": vs, "preferredVersion": vs[0]} for g, vs in groups.items()]}
        gv = path[len("/api/"):] if path.startswith("/api/") else path[len("/apis/"):] if path.startswith("/apis/") else None
        if gv in RESOURCES:
            return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
                {"name": r, "singularName": "", "namespaced": ns, "kind": k, "verbs": ["get", "list"]}
                for r, k, ns in RESOURCES[gv]]}
        parts = path.strip("/").split("/")
        # /api/v1/namespaces/<ns>/secrets/<name>
        if len(parts) == 6 and parts[:2] == ["api", "v1"] and parts[2] == "namespaces" and parts[4] == "secrets":
            secret = self.secrets.get((parts[3], parts[5]))
            return (200, secret) if secret else (404, not_found)
        return 404, not_found
