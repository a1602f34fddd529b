{{/* Names of this chart's resources and of the subcharts' (computed as the subcharts compute them). */}}

{{- define "mlops-stack.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* A subchart's fullname: its fullnameOverride, else <release>-<chart> unless the release name contains it. */}}
{{- define "mlops-stack.subFullname" -}}
{{- $values := index .ctx.Values .chart }}
{{- if $values.fullnameOverride }}
{{- $values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains .chart .ctx.Release.Name }}
{{- .ctx.Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .ctx.Release.Name .chart | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "mlops-stack.server" -}}
{{ include "mlops-stack.subFullname" (dict "ctx" . "chart" "factory-server") }}
{{- end }}

{{- define "mlops-stack.app" -}}
{{ include "mlops-stack.subFullname" (dict "ctx" . "chart" "mlops-factory") }}
{{- end }}

{{- define "mlops-stack.trackingUri" -}}
{{- $app := index .Values "mlops-factory" }}
{{- if and $app.tracking $app.tracking.uri }}{{ $app.tracking.uri }}{{ else }}http://{{ include "mlops-stack.server" . }}:{{ (index .Values "factory-server").service.port }}{{ end }}
{{- end }}

{{- define "mlops-stack.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mlops-factory
{{- end }}

{{- define "mlops-stack.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "mlops-stack.trackingEnv" -}}
{{- $app := index .Values "mlops-factory" }}
- name: MLFLOW_TRACKING_URI
  value: {{ include "mlops-stack.trackingUri" . | quote }}
- name: MLFLOW_TRACKING_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $app.tracking.existingSecret }}
      key: admin-user
- name: MLFLOW_TRACKING_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $app.tracking.existingSecret }}
      key: admin-password
- name: XDG_CACHE_HOME
  value: /var/lib/factory/cache
{{- end }}

{{/* The loop's drift source (loop.drift.source), checked against what the serving side provides. */}}
{{- define "mlops-stack.driftSource" -}}
{{- $app := index .Values "mlops-factory" }}
{{- $source := .Values.loop.drift.source }}
{{- if eq $source "requestLog" }}
{{- if not (or (dig "requestLog" "enabled" false $app) (dig "requestLog" "persistence" "existingClaim" "" $app)) }}
{{- fail "loop.drift.source=requestLog reads the serving pods' request log: set mlops-factory.requestLog.enabled=true (or requestLog.persistence.existingClaim), or use loop.drift.source=sketches" }}
{{- end }}
{{- else if eq $source "sketches" }}
{{- if not (or .Values.loop.drift.sketchService (dig "headlessService" "enabled" true $app)) }}
{{- fail "loop.drift.source=sketches needs the serving pods' headless Service (mlops-factory.headlessService.enabled=true) or loop.drift.sketchService" }}
{{- end }}
{{- if has (toString (dig "serve" "driftWindow" "5m" $app)) (list "0" "0s" "0m" "0h") }}
{{- fail "loop.drift.source=sketches reads the serving pods' sketches, which mlops-factory.serve.driftWindow=0 turns off" }}
{{- end }}
{{- else }}
{{- fail (printf "loop.drift.source must be requestLog or sketches, got %q" (toString $source)) }}
{{- end }}
{{- $source }}
{{- end }}

{{/* loop.drift.source=sketches: host:port of every serving pod (the mlops-factory headless Service). */}}
{{- define "mlops-stack.sketchService" -}}
{{- $app := index .Values "mlops-factory" }}
{{- .Values.loop.drift.sketchService | default (printf "%s-headless:%d" (include "mlops-stack.app" .) (int (dig "serve" "httpPort" 8080 $app))) }}
{{- end }}
