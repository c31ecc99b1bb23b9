{{/* Chart name, shortened to a DNS label. */}}
{{- define "scopegate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full object name: the release name when it already contains the chart name. */}}
{{- define "scopegate.fullname" -}}
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

{{- define "scopegate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scopegate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "scopegate.labels" -}}
{{ include "scopegate.selectorLabels" . }}
app.kubernetes.io/component: authorization-webhook
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "scopegate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "scopegate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "scopegate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Host-network modes listen on the node's loopback only. */}}
{{- define "scopegate.listenHost" -}}
{{- if eq .Values.mode "deployment" }}0.0.0.0{{ else }}127.0.0.1{{ end }}
{{- end }}

{{- define "scopegate.policyConfigMap" -}}
{{- default (printf "%s-policies" (include "scopegate.fullname" .)) .Values.policy.existingConfigMap }}
{{- end }}

{{/* Whether the chart owns a policy ConfigMap (inline files or the built-in roles). */}}
{{- define "scopegate.ownsPolicyConfigMap" -}}
{{- if and (not .Values.policy.existingConfigMap) (or .Values.policy.files .Values.policy.aksBuiltinRoles) }}true{{ end }}
{{- end }}

{{- define "scopegate.syncDir" -}}/var/lib/scopegate/synced{{- end }}
{{- define "scopegate.syncOutput" -}}{{ include "scopegate.syncDir" . }}/azure{{- end }}

{{/* The serving Secret: cert-manager's Certificate or tls.existingSecret. */}}
{{- define "scopegate.tlsSecret" -}}
{{- if .Values.certManager.enabled }}
{{- printf "%s-tls" (include "scopegate.fullname" .) }}
{{- else }}
{{- required "tls.existingSecret is required when certManager.enabled is false" .Values.tls.existingSecret }}
{{- end }}
{{- end }}

{{- define "scopegate.clientCASecret" -}}
{{- default (include "scopegate.tlsSecret" .) .Values.tls.clientCA.secretName }}
{{- end }}

{{- define "scopegate.clientCAKey" -}}
{{- if .Values.tls.clientCA.key }}
{{- .Values.tls.clientCA.key }}
{{- else if .Values.certManager.enabled }}ca.crt
{{- else }}client-ca.crt
{{- end }}
{{- end }}

{{/* The issuer both certificates come from. */}}
{{- define "scopegate.issuerRef" -}}
{{- if .Values.certManager.issuerRef }}
name: {{ required "certManager.issuerRef.name is required" .Values.certManager.issuerRef.name }}
kind: {{ default "Issuer" .Values.certManager.issuerRef.kind }}
group: {{ default "cert-manager.io" .Values.certManager.issuerRef.group }}
{{- else }}
name: {{ include "scopegate.fullname" . }}-ca
kind: Issuer
group: cert-manager.io
{{- end }}
{{- end }}

{{/* The sync configuration file (`scopegate sync --config`, `serve --sync-config`). */}}
{{- define "scopegate.syncConfig" -}}
{{- $c := dict "output" (include "scopegate.syncOutput" .) "interval" .Values.sync.interval "maxDeletionFraction" .Values.sync.maxDeletionFraction }}
{{- if .Values.sync.arm.enabled }}
{{- /* The shipped built-in roles and synced ones would be the same GUIDs twice: a built-in that
Azure changes would then fail every reload. With the shipped copy, only custom roles are synced. */}}
{{- $roles := .Values.sync.arm.roleDefinitions | default (ternary "custom" "all" (and .Values.policy.aksBuiltinRoles (not .Values.policy.existingConfigMap))) }}
{{- $_ := set $c "arm" (dict "scopes" (required "sync.arm.scopes needs at least one ARM scope when sync.arm.enabled" (.Values.sync.arm.scopes | default nil)) "roleDefinitions" $roles) }}
{{- end }}
{{- if .Values.sync.graph.enabled }}
{{- $_ := set $c "graph" dict }}
{{- end }}
{{- if .Values.sync.allowLargeDeletions }}
{{- $_ := set $c "allowLargeDeletions" true }}
{{- end }}
{{- with .Values.sync.credential.existingSecret }}
{{- $file := printf "/etc/scopegate/sync-credential/%s" $.Values.sync.credential.key }}
{{- if eq $.Values.sync.credential.type "certificate" }}
{{- $_ := set $c "credential" (dict "certificateFile" $file) }}
{{- else }}
{{- $_ := set $c "credential" (dict "clientSecretFile" $file) }}
{{- end }}
{{- end }}
{{- toYaml $c }}
{{- end }}

{{/* The configuration file: the values' config with the chart's policy directories. */}}
{{- define "scopegate.config" -}}
{{- $policies := list "/etc/scopegate/policies" }}
{{- if .Values.sync.enabled }}
{{- $policies = append $policies (include "scopegate.syncDir" .) }}
{{- end }}
{{- $c := deepCopy .Values.config }}
{{- $_ := set $c "policies" $policies }}
{{- toYaml $c }}
{{- end }}

{{/* Environment of a container that signs in to Azure with the fallback credential. */}}
{{- define "scopegate.syncEnv" -}}
{{- if and .Values.sync.credential.existingSecret (not .Values.workloadIdentity.enabled) }}
- name: AZURE_CLIENT_ID
  value: {{ required "sync.credential.clientId is required with sync.credential.existingSecret" .Values.sync.credential.clientId | quote }}
- name: AZURE_TENANT_ID
  value: {{ required "sync.credential.tenantId is required with sync.credential.existingSecret" .Values.sync.credential.tenantId | quote }}
{{- with .Values.sync.credential.authorityHost }}
- name: AZURE_AUTHORITY_HOST
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{- define "scopegate.syncMounts" -}}
- name: sync-config
  mountPath: /etc/scopegate/sync
  readOnly: true
- name: synced
  mountPath: {{ include "scopegate.syncDir" . }}
{{- if .Values.sync.credential.existingSecret }}
- name: sync-credential
  mountPath: /etc/scopegate/sync-credential
  readOnly: true
{{- end }}
{{- end }}
