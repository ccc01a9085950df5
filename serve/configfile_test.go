package serve

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadModelConfigFile reads a model_config_list file in the text
// format's variants TF Serving's users write: comments, both quotes,
// optional colons before messages, separators, list syntax, labels.
func TestReadModelConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "models.config")
	require.NoError(t, os.WriteFile(path, []byte(`# Two models.
model_config_list {
  config {
    name: 'first'
    base_path: "/models/first/"
    model_platform: "tensorflow"
  }
  config: {
    name: "second", base_path: '/models/it''s "second"';
    model_version_policy: { specific { versions: 42 versions: [43, 0x2c] } }
    version_labels { key: 'stable' value: 42 }
    version_labels < key: "canary" value: 44 >
  }
  config { name: "third" base_path: "/m/3" model_version_policy { latest { num_versions: 2 } } }
  config { name: "fourth" base_path: "/m/4" model_version_policy { all {} } }
}
`), 0o644))
	got, err := ReadModelConfigFile(path)
	require.NoError(t, err)
	require.Equal(t, []ModelConfig{
		{Name: "first", BasePath: "/models/first/"},
		{Name: "second", BasePath: `/models/its "second"`, Policy: VersionPolicy{Kind: Specific, Versions: []int64{42, 43, 44}},
			VersionLabels: map[string]int64{"stable": 42, "canary": 44}},
		{Name: "third", BasePath: "/m/3", Policy: VersionPolicy{Kind: Latest, NumVersions: 2}},
		{Name: "fourth", BasePath: "/m/4", Policy: VersionPolicy{Kind: All}},
	}, got)
}

// TestModelConfigErrors: what the reader refuses, each with the line.
func TestModelConfigErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{`model_config_list { config { name: "a" base_path: "/a" } `, `unexpected end of file (missing "}")`},
		{`model_config_list { config { name: "a" base_path: "/a" colour: "red" } }`, `line 1: field "colour" of ModelConfig is not supported`},
		{"model_config_list {\n config { name: \"a\" model_platform: \"pytorch\" } }", `line 2: model_platform "pytorch" is not supported`},
		{`model_config_list { config { base_path: "/a" } }`, "a config without a name"},
		{`custom_model_config { }`, `field "custom_model_config" is not supported`},
		{`model_config_list { config { name: "a" model_version_policy { specific { } } } }`, "specific {} lists no versions"},
		{`model_config_list { config { name: "a" model_version_policy { latest { num_versions: -1 } } } }`, "num_versions -1 out of range"},
		{`model_config_list { config { name: "a" model_version_policy { specific { versions: "x" } } } }`, `"x" is not an integer`},
		{`model_config_list { config { name: "a
" } }`, "newline in a string"},
		{`model_config_list { config { name: "a\q" } }`, "bad string"},
		{`model_config_list { config { name: @ } }`, "unexpected character '@'"},
		{strings.Repeat("a {", 100), "nested too deep"},
	} {
		_, err := ParseModelConfigList(c.text)
		require.Error(t, err, c.text)
		require.Contains(t, err.Error(), c.want, c.text)
	}
	got, err := ParseModelConfigList("# nothing but a comment\n")
	require.NoError(t, err)
	require.Empty(t, got)
}
