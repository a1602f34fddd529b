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
