package config

import (
	"io"
	"strings"
	"testing"
)

func noEnv(string) string { return "" }

func TestDefaultsMatchPeers(t *testing.T) {
	c, err := Parse(nil, "wrenn", noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 49983 || c.CgroupRoot != "/sys/fs/cgroup" || c.MMDSAddr != "169.254.169.254" ||
		c.ForwardAddr != "169.254.0.21" || c.ListenAddr != "" || c.IsNotFC || c.NoCgroups {
		t.Fatalf("defaults differ from the peers': %+v", c)
	}
	if c.Flavor != Wrenn || c.RunDir != "/run/wrenn" || c.LogFormat != "json" {
		t.Fatalf("flavour defaults: %+v", c)
	}
	if c.Addr() != ":49983" {
		t.Fatalf("addr %q", c.Addr())
	}
}

func TestSingleAndDoubleDashBothWork(t *testing.T) {
	for _, args := range [][]string{
		{"-port", "1234", "-isnotfc", "-no-cgroups", "-cgroup-root", "/x", "-cmd", "echo hi"},
		{"--port", "1234", "--isnotfc", "--no-cgroups", "--cgroup-root=/x", "--cmd=echo hi"},
	} {
		c, err := Parse(args, "wrenn", noEnv, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if c.Port != 1234 || !c.IsNotFC || !c.NoCgroups || c.CgroupRoot != "/x" || c.Cmd != "echo hi" {
			t.Fatalf("%v parsed as %+v", args, c)
		}
		if c.LogFormat != "text" {
			t.Fatalf("--isnotfc should default to text logs, got %q", c.LogFormat)
		}
	}
}

func TestEnvVarsAndFlagPrecedence(t *testing.T) {
	env := map[string]string{
		"ENVD_PORT": "5555", "ENVD_FLAVOR": "e2b", "ENVD_NO_CGROUPS": "true",
		"ENVD_MMDS_ADDR": "127.0.0.1:9", "ENVD_FORWARD_ADDR": "10.0.0.1", "ENVD_LOG_FORMAT": "text",
		"ENVD_LISTEN_ADDR": "127.0.0.1", "ENVD_CGROUP_ROOT": "/cg",
	}
	getenv := func(k string) string { return env[k] }
	c, err := Parse(nil, "wrenn", getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 5555 || c.Flavor != E2B || !c.NoCgroups || c.MMDSAddr != "127.0.0.1:9" ||
		c.ForwardAddr != "10.0.0.1" || c.LogFormat != "text" || c.ListenAddr != "127.0.0.1" ||
		c.CgroupRoot != "/cg" || c.RunDir != "/run/e2b" {
		t.Fatalf("env not applied: %+v", c)
	}
	c, err = Parse([]string{"--port", "6666", "--flavor", "wrenn"}, "wrenn", getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 6666 || c.Flavor != Wrenn {
		t.Fatalf("flags must win over env: %+v", c)
	}
}

func TestBuildTimeFlavorDefaultAndOverride(t *testing.T) {
	c, err := Parse(nil, "e2b", noEnv, io.Discard)
	if err != nil || c.Flavor != E2B || !c.Flavor.HealthNoContent || c.Flavor.Env("SANDBOX_ID") != "E2B_SANDBOX_ID" {
		t.Fatalf("e2b build default: %+v %v", c.Flavor, err)
	}
	c, err = Parse([]string{"--flavor", "wrenn"}, "e2b", noEnv, io.Discard)
	if err != nil || c.Flavor != Wrenn || c.Flavor.HealthNoContent {
		t.Fatalf("override: %+v %v", c.Flavor, err)
	}
}

func TestBadInputIsAClearError(t *testing.T) {
	cases := map[string][]string{
		"flag provided but not defined": {"--bogus"},
		"invalid value":                 {"--port", "notanumber"},
		"unknown flavor":                {"--flavor", "other"},
		"invalid port":                  {"--port", "70000"},
		"--log-format":                  {"--log-format", "xml"},
		"unexpected argument":           {"stray"},
	}
	for want, args := range cases {
		var out strings.Builder
		_, err := Parse(args, "wrenn", noEnv, &out)
		if err == nil || !strings.Contains(err.Error()+out.String(), want) {
			t.Errorf("%v: want error containing %q, got %v / %q", args, want, err, out.String())
		}
	}
	_, err := Parse(nil, "wrenn", func(k string) string {
		if k == "ENVD_PORT" {
			return "x"
		}
		return ""
	}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "ENVD_PORT") {
		t.Fatalf("bad env var must name the variable: %v", err)
	}
}

func TestVersionAndCommitFlags(t *testing.T) {
	c, err := Parse([]string{"-version"}, "wrenn", noEnv, io.Discard)
	if err != nil || !c.PrintVersion {
		t.Fatal("-version", err)
	}
	c, err = Parse([]string{"--commit"}, "wrenn", noEnv, io.Discard)
	if err != nil || !c.PrintCommit {
		t.Fatal("--commit", err)
	}
	for _, f := range []string{"--verbose", "--resume-handover"} {
		if _, err := Parse([]string{f}, "wrenn", noEnv, io.Discard); err != nil {
			t.Errorf("%s must be accepted for E2B compatibility: %v", f, err)
		}
	}
}
