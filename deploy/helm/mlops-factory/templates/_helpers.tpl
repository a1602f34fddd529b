{{/* Names, labels, and the one pod template every serving Deployment (single, blue, green) uses. */}}

{{- define "mlops-factory.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mlops-factory.fullname" -}}
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

{{- define "mlops-factory.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "mlops-factory.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mlops-factory
{{- end }}

{{- define "mlops-factory.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mlops-factory.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mlops-factory.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "mlops-factory.trackingUri" -}}
{{ .Values.tracking.uri | default (printf "http://%s-factory-server:5000" .Release.Name) }}
{{- end }}

{{- define "mlops-factory.adminTokenSecret" -}}
{{ .Values.adminToken.secretName | default (printf "%s-admin-token" (include "mlops-factory.fullname" .)) }}
{{- end }}

{{- define "mlops-factory.requestsClaim" -}}
{{ .Values.requestLog.persistence.existingClaim | default (printf "%s-requests" (include "mlops-factory.fullname" .)) }}
{{- end }}

{{/*
The serving Deployments: one in the plain layout, blue and green with blueGreen.enabled.
Each entry: component, colour suffix, alias, replicas, version label, and whether HTTP and gRPC
share one port (the gateway's upstreams do).
*/}}
{{- define "mlops-factory.serveSets" -}}
{{- $sets := list }}
{{- if .Values.blueGreen.enabled }}
{{- range $colour := list "blue" "green" }}
{{- $c := index $.Values.blueGreen $colour }}
{{- $sets = append $sets (dict "component" (printf "serve-%s" $colour) "suffix" (printf "-%s" $colour) "colour" $colour "alias" $c.alias "replicas" $c.replicaCount "versionLabel" $c.versionLabel "onePort" true) }}
{{- end }}
{{- else }}
{{- $sets = append $sets (dict "component" "serve" "suffix" "" "colour" "" "alias" .Values.model.alias "replicas" .Values.replicaCount "versionLabel" .Values.model.versionLabel "onePort" false) }}
{{- end }}
{{- toJson $sets }}
{{- end }}

{{/* The model URI a serving set follows. */}}
{{- define "mlops-factory.modelUri" -}}
{{- if and .ctx.Values.model.uri (not .set.colour) }}{{ .ctx.Values.model.uri }}{{ else }}models:/{{ .ctx.Values.model.name }}@{{ .set.alias }}{{ end }}
{{- end }}

{{/* Tracking server address and credentials (serve, init waits). */}}
{{- define "mlops-factory.trackingEnv" -}}
- name: MLFLOW_TRACKING_URI
  value: {{ include "mlops-factory.trackingUri" . | quote }}
- name: MLFLOW_TRACKING_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .Values.tracking.existingSecret }}
      key: {{ .Values.tracking.userKey }}
- name: MLFLOW_TRACKING_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.tracking.existingSecret }}
      key: {{ .Values.tracking.passwordKey }}
{{- end }}

{{/* The admin bearer token, as a file (never in the environment or the command line). */}}
{{- define "mlops-factory.adminTokenEnv" -}}
- name: FACTORY_ADMIN_TOKEN_FILE
  value: /run/secrets/factory-admin/token
{{- end }}
{{- define "mlops-factory.adminTokenMount" -}}
- name: admin-token
  mountPath: /run/secrets/factory-admin
  readOnly: true
{{- end }}
{{- define "mlops-factory.adminTokenVolume" -}}
- name: admin-token
  secret:
    secretName: {{ include "mlops-factory.adminTokenSecret" . }}
    defaultMode: 0440
{{- end }}

{{/* Returns a value this release stored in a secret before (kept across upgrades), else `fallback`. */}}
{{- define "mlops-factory.keptValue" -}}
{{- $secret := lookup "v1" "Secret" .ctx.Release.Namespace .name }}
{{- if and $secret $secret.data (hasKey $secret.data .key) }}
{{- index $secret.data .key | b64dec }}
{{- else }}
{{- .fallback }}
{{- end }}
{{- end }}
