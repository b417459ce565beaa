#!/bin/sh
# Write Alertmanager's configuration from the environment, then start
# Alertmanager with the arguments of this script.
#
# With SLACK_URL set, every alert goes to that Slack incoming webhook, to
# SLACK_CHANNEL and as SLACK_USER when they are set. Without SLACK_URL the
# only receiver has no integration: Alertmanager lists the alerts and sends
# nothing. The URL goes into a file of its own (`api_url_file`), so it needs
# no YAML quoting and the configuration shown in the web UI does not contain
# it.
set -eu

config_dir=${ALERTMANAGER_CONFIG_DIR:-/tmp/alertmanager}
config_file="$config_dir/alertmanager.yml"

# Print $1 as a YAML single-quoted scalar: a quote inside is doubled.
yaml_quote() {
  printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"
}

write_config() {
  cat <<'YAML'
route:
  receiver: default
  group_by: [alertname, instance, container_label_com_docker_swarm_service_name]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h

receivers:
  - name: default
YAML
  if [ -z "${SLACK_URL:-}" ]; then
    return
  fi
  printf '%s' "$SLACK_URL" > "$config_dir/slack_url"
  echo "    slack_configs:"
  echo "      - api_url_file: $(yaml_quote "$config_dir/slack_url")"
  echo "        send_resolved: true"
  if [ -n "${SLACK_CHANNEL:-}" ]; then
    echo "        channel: $(yaml_quote "$SLACK_CHANNEL")"
  fi
  if [ -n "${SLACK_USER:-}" ]; then
    echo "        username: $(yaml_quote "$SLACK_USER")"
  fi
  cat <<'YAML'
        title: '[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}'
        text: '{{ range .Alerts }}{{ .Annotations.summary }}{{ "\n" }}{{ end }}'
YAML
}

# The webhook URL is a secret: only Alertmanager's user may read the files.
umask 077
mkdir -p "$config_dir"
write_config > "$config_file"

if [ -n "${SLACK_URL:-}" ]; then
  echo "alertmanager entrypoint: alerts go to Slack${SLACK_CHANNEL:+ channel $SLACK_CHANNEL}" >&2
else
  echo "alertmanager entrypoint: SLACK_URL is empty, so alerts are not sent anywhere" >&2
fi

exec /bin/alertmanager --config.file="$config_file" "$@"
