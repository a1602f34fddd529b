{{/* Names, labels and the values shared by several templates. */}}

{{- define "factory-server.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "factory-server.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "factory-server.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "factory-server.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mlops-factory
{{- end }}

{{- define "factory-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "factory-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The server pods (the database's pods carry component: database). */}}
{{- define "factory-server.serverSelector" -}}
{{ include "factory-server.selectorLabels" . }}
app.kubernetes.io/component: tracking-server
{{- end }}

{{- define "factory-server.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "factory-server.pg.fullname" -}}
{{ include "factory-server.fullname" . | trunc 52 | trimSuffix "-" }}-postgresql
{{- end }}

{{- define "factory-server.pg.secretName" -}}
{{ .Values.backendStore.postgresql.existingSecret | default (include "factory-server.pg.fullname" .) }}
{{- end }}

{{- define "factory-server.bundledPostgres" -}}
{{- if and .Values.backendStore.postgresql.enabled (not .Values.backendStore.external.existingSecret) }}true{{ end }}
{{- end }}

{{- define "factory-server.s3" -}}
{{- if hasPrefix "s3://" .Values.artifacts.destination }}true{{ end }}
{{- end }}

{{- define "factory-server.localArtifacts" -}}
{{- if and .Values.artifacts.serve (not (hasPrefix "s3://" .Values.artifacts.destination)) }}true{{ end }}
{{- end }}

{{/* The path prefix of every route (--static-prefix). */}}
{{- define "factory-server.prefix" -}}
{{ .Values.server.staticPrefix | trimSuffix "/" }}
{{- end }}

{{/*
Host headers the server accepts: its Service under every DNS name a client in the cluster may use,
the ingress hosts, loopback (kubectl port-forward) and the private ranges (pod IPs: probes,
Prometheus), plus server.allowedHosts.
*/}}
{{- define "factory-server.allowedHosts" -}}
{{- $svc := include "factory-server.fullname" . }}
{{- $port := toString .Values.service.port }}
{{- $hosts := list }}
{{- range $name := list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.%s" $svc .Release.Namespace .Values.clusterDomain) }}
{{- $hosts = append $hosts $name }}
{{- $hosts = append $hosts (printf "%s:%s" $name $port) }}
{{- end }}
{{- if .Values.ingress.enabled }}
{{- range .Values.ingress.hosts }}
{{- $hosts = append $hosts .host }}
{{- end }}
{{- end }}
{{- $hosts = concat $hosts (list "localhost" "localhost:*" "127.0.0.1" "127.0.0.1:*" "10.*" "192.168.*") }}
{{- range $i := until 16 }}
{{- $hosts = append $hosts (printf "172.%d.*" (add 16 $i)) }}
{{- end }}
{{- $hosts = concat $hosts .Values.server.allowedHosts }}
{{- if has "*" .Values.server.allowedHosts }}*{{ else }}{{ $hosts | uniq | join "," }}{{ end }}
{{- end }}

{{/*
Returns the value of key `key` of secret `name` when this release created it before (so a
generated value survives upgrades), else `fallback`. `lookup` answers nothing under
`helm template` / --dry-run, which then renders a fresh value.
*/}}
{{- define "factory-server.keptValue" -}}
{{- $secret := lookup "v1" "Secret" .ctx.Release.Namespace .name }}
{{- if and $secret $secret.data (hasKey $secret.data .key) }}
{{- index $secret.data .key | b64dec }}
{{- else }}
{{- .fallback }}
{{- end }}
{{- end }}

{{/* The container's view of the backend DSN, used by the server and its auth database. */}}
{{- define "factory-server.dsnEnv" -}}
{{- if .Values.backendStore.external.existingSecret }}
- name: MLFLOW_BACKEND_STORE_URI
  valueFrom:
    secretKeyRef:
      name: {{ .Values.backendStore.external.existingSecret }}
      key: {{ .Values.backendStore.external.key }}
{{- else if .Values.backendStore.postgresql.enabled }}
- name: POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "factory-server.pg.secretName" . }}
      key: password
- name: MLFLOW_BACKEND_STORE_URI
  value: {{ printf "postgresql://%s:$(POSTGRES_PASSWORD)@%s:5432/%s" .Values.backendStore.postgresql.username (include "factory-server.pg.fullname" .) .Values.backendStore.postgresql.database | quote }}
{{- else }}
{{- fail "backendStore: enable the bundled postgresql or give backendStore.external.existingSecret (a postgresql:// DSN)" }}
{{- end }}
{{- end }}
