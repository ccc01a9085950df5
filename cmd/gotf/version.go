package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/gotf/gotf/tfgo"
	"github.com/spf13/cobra"
)

// versionInfo is what `gotf version --json` prints.
type versionInfo struct {
	TensorFlow string            `json:"tensorflow"`
	Go         string            `json:"go"`
	Platform   string            `json:"platform"`
	Module     string            `json:"module,omitempty"`
	Version    string            `json:"version,omitempty"`
	Settings   map[string]string `json:"settings,omitempty"`
	Deps       map[string]string `json:"deps,omitempty"`
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the TensorFlow runtime, Go and build versions",
		Long: `Prints the version of the TensorFlow C runtime gotf is linked against (as
TF_Version reports it, which is what tf.version.VERSION says for the same
wheel), the Go toolchain, and the module build information (version, VCS
revision when built from a checkout, dependencies).`,
		Example: `  gotf version
  gotf version --json | jq -r .tensorflow`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo{
				TensorFlow: tfgo.Version(),
				Go:         runtime.Version(),
				Platform:   runtime.GOOS + "/" + runtime.GOARCH,
			}
			if bi, ok := debug.ReadBuildInfo(); ok {
				v.Module, v.Version = bi.Main.Path, bi.Main.Version
				v.Settings = map[string]string{}
				for _, s := range bi.Settings {
					v.Settings[s.Key] = s.Value
				}
				v.Deps = map[string]string{}
				for _, d := range bi.Deps {
					v.Deps[d.Path] = d.Version
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, v)
			}
			fmt.Fprintf(out, "TensorFlow: %s\nGo:         %s (%s)\n", v.TensorFlow, v.Go, v.Platform)
			if v.Module != "" {
				fmt.Fprintf(out, "Module:     %s %s\n", v.Module, v.Version)
			}
			for _, k := range []string{"vcs.revision", "vcs.time", "vcs.modified", "CGO_ENABLED", "-tags"} {
				if s, ok := v.Settings[k]; ok {
					fmt.Fprintf(out, "  %s=%s\n", k, s)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
