package serve

import (
	"fmt"
	"strings"

	"github.com/gotf/gotf/serve/tfserving"
	"google.golang.org/protobuf/encoding/prototext"
)

// MonitoringConfig is where the REST port answers Prometheus scrapes (TF
// Serving's MonitoringConfig, from --monitoring_config_file). Its zero
// value serves them at DefaultMetricsPath.
type MonitoringConfig struct {
	// Disable turns the metrics endpoint off (prometheus_config.enable
	// false in TF Serving's file).
	Disable bool
	// Path is the endpoint's path; "" means DefaultMetricsPath.
	Path string
}

// DefaultMetricsPath is TF Serving's Prometheus path
// (PrometheusExporter::kPrometheusPath).
const DefaultMetricsPath = "/monitoring/prometheus/metrics"

// metricsPath is the path the metrics are served at, or "" when off.
func (c MonitoringConfig) metricsPath() string {
	if c.Disable {
		return ""
	}
	if c.Path == "" {
		return DefaultMetricsPath
	}
	return c.Path
}

// ReadMonitoringConfigFile reads TF Serving's --monitoring_config_file: a
// MonitoringConfig message in protobuf text format
// (prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }).
func ReadMonitoringConfigFile(path string) (MonitoringConfig, error) {
	text, err := readBoundedFile(path)
	if err != nil {
		return MonitoringConfig{}, err
	}
	c, err := ParseMonitoringConfig(text)
	if err != nil {
		return MonitoringConfig{}, fmt.Errorf("serve: monitoring config file %s: %w", path, err)
	}
	return c, nil
}

// ParseMonitoringConfig reads a MonitoringConfig message in protobuf text
// format. As in TF Serving, metrics are served only when
// prometheus_config.enable is true; an empty path means
// DefaultMetricsPath. Unknown fields are refused, and so is a path that is
// not absolute or that lies under the API's /v1/.
func ParseMonitoringConfig(text string) (MonitoringConfig, error) {
	if len(text) > maxBatchingFileBytes {
		return MonitoringConfig{}, fmt.Errorf("monitoring config of more than %d bytes", maxBatchingFileBytes)
	}
	var m tfserving.MonitoringConfig
	if err := prototext.Unmarshal([]byte(text), &m); err != nil {
		return MonitoringConfig{}, fmt.Errorf("parsing MonitoringConfig: %w", err)
	}
	pc := m.GetPrometheusConfig()
	c := MonitoringConfig{Disable: !pc.GetEnable(), Path: pc.GetPath()}
	if err := c.validate(); err != nil {
		return MonitoringConfig{}, err
	}
	return c, nil
}

func (c MonitoringConfig) validate() error {
	p := c.metricsPath()
	if p == "" {
		return nil
	}
	if p[0] != '/' {
		return fmt.Errorf("prometheus_config.path %q must start with /", p)
	}
	if lp := strings.ToLower(p); strings.HasPrefix(lp, "/v1/") || lp == "/v1" {
		return fmt.Errorf("prometheus_config.path %q lies under the REST API's /v1/", p)
	}
	return nil
}
