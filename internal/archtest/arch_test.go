// Package archtest holds the architecture rules as tests: who may import
// whom, where wire types and wire errors may appear, and size budgets.
package archtest

import (
	"bufio"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/sandboxd/envd/"

// Subsystems own state; they never import the server, the composition root
// or each other, except for the edges listed in allowedEdges.
var subsystems = map[string]bool{
	"internal/process": true, "internal/filesystem": true, "internal/files": true,
	"internal/lifecycle": true, "internal/ports": true, "internal/cgroups": true,
	"internal/reaper": true, "internal/metrics": true,
}

var allowedEdges = map[[2]string]bool{
	{"internal/process", "internal/cgroups"}: true,
	{"internal/process", "internal/reaper"}:  true,
	{"internal/lifecycle", "internal/ports"}: true,
}

// Leaves may be imported by anyone and import no other envd package but
// errs and safe.
var leaves = map[string]bool{
	"internal/errs": true, "internal/safe": true, "internal/config": true, "internal/users": true,
	"internal/execctx": true, "internal/auth": true, "internal/memtrim": true, "internal/fsutil": true,
	"internal/rpc": true, "internal/wirekit": true,
}

// Only these may use generated wire types (tests anywhere may).
var wireUsers = map[string]bool{
	"internal/server": true, "internal/testenv": true, "client": true, "cmd/envdctl": true,
}

type file struct {
	pkg     string // module-relative directory
	path    string
	test    bool
	imports []string // module-relative, envd packages only
	lines   int
	src     string
}

func root() string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(f), "..", "..")
}

func loadFiles(t *testing.T) []file {
	t.Helper()
	r := root()
	var out []file
	err := filepath.WalkDir(r, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", ".git", "tools", "gen", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(r, p)
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, src, parser.ImportsOnly)
		if err != nil {
			return err
		}
		fl := file{pkg: filepath.Dir(rel), path: rel, test: strings.HasSuffix(p, "_test.go"),
			lines: strings.Count(string(src), "\n"), src: string(src)}
		for _, imp := range f.Imports {
			ip, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(ip, module) {
				fl.imports = append(fl.imports, strings.TrimPrefix(ip, module))
			}
		}
		out = append(out, fl)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func topPkg(p string) string {
	if strings.HasPrefix(p, "internal/gen") {
		return "internal/gen"
	}
	parts := strings.Split(p, "/")
	if parts[0] == "internal" && len(parts) > 1 {
		return parts[0] + "/" + parts[1]
	}
	if parts[0] == "cmd" && len(parts) > 1 {
		return parts[0] + "/" + parts[1]
	}
	return parts[0]
}

func TestImportRules(t *testing.T) {
	for _, f := range loadFiles(t) {
		if f.test {
			continue
		}
		from := topPkg(f.pkg)
		for _, imp := range f.imports {
			to := topPkg(imp)
			if to == from {
				continue
			}
			switch {
			case to == "internal/gen" && !wireUsers[from]:
				t.Errorf("%s imports wire types (%s): convert in internal/server instead", f.path, imp)
			case to == "internal/server" && from != "internal/daemon":
				t.Errorf("%s imports internal/server", f.path)
			case to == "internal/daemon" && from != "cmd/envd" && from != "internal/testenv":
				t.Errorf("%s imports the composition root", f.path)
			case subsystems[from] && subsystems[to] && !allowedEdges[[2]string{from, to}]:
				t.Errorf("subsystem %s imports subsystem %s (%s)", from, to, f.path)
			case leaves[from] && to != "internal/errs" && to != "internal/safe" &&
				!(from == "internal/rpc" && to == "internal/wirekit"): // reflection's encoding
				t.Errorf("leaf %s imports %s", from, to)
			}
		}
	}
}

// RPC errors are built in the one mapping file (one error vocabulary);
// internal/rpc builds its own protocol errors.
func TestWireErrorsBuiltInOnePlace(t *testing.T) {
	for _, f := range loadFiles(t) {
		if f.test || f.path == filepath.Join("internal", "server", "errmap.go") || f.pkg == filepath.Join("internal", "rpc") {
			continue
		}
		if strings.Contains(f.src, "connect.NewError(") || strings.Contains(f.src, "rpc.NewError(") {
			t.Errorf("%s builds a Connect error: return an errs kind and let errmap.go map it", f.path)
		}
	}
}

// Size budgets: hand-written files ≤ 400 lines, tests ≤ 800, main ≤ 150.
func TestSizeBudgets(t *testing.T) {
	for _, f := range loadFiles(t) {
		limit := 400
		switch {
		case f.test:
			limit = 800
		case f.path == filepath.Join("cmd", "envd", "main.go"):
			limit = 150
		}
		if f.lines > limit {
			t.Errorf("%s has %d lines (budget %d): split it", f.path, f.lines, limit)
		}
	}
}

// Every sync.Mutex or RWMutex field says what it guards.
func TestMutexesSayWhatTheyGuard(t *testing.T) {
	for _, f := range loadFiles(t) {
		if f.test {
			continue
		}
		sc := bufio.NewScanner(strings.NewReader(f.src))
		n := 0
		for sc.Scan() {
			n++
			line := strings.TrimSpace(sc.Text())
			if (strings.Contains(line, " sync.Mutex") || strings.Contains(line, " sync.RWMutex")) &&
				!strings.HasPrefix(line, "var ") && !strings.Contains(line, "guard") {
				t.Errorf("%s:%d: mutex field without a 'guards' comment: %s", f.path, n, line)
			}
		}
	}
}

// The daemon links neither connect-go nor protobuf-go: internal/rpc and the
// generated …wire packages replace them, which is most of the binary-size
// budget (issue 2: ≤ 7 MB). Tests, the client and envdctl may use both.
func TestDaemonLinksNoConnectOrProtobufRuntime(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/envd")
	cmd.Dir = root()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "connectrpc.com/") || strings.HasPrefix(p, "google.golang.org/protobuf") ||
			p == "regexp" || p == "text/template" {
			t.Errorf("cmd/envd links %s", p)
		}
	}
}
