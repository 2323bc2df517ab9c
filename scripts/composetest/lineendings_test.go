package composetest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// git runs git in the repository and returns its output.
func git(t *testing.T, args ...string) string {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", append([]string{"-C", root}, args...)...).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + strings.TrimSpace(string(ee.Stderr))
		}
		t.Fatalf("git %s: %s (this test asks git how it checks files out; run it in a git checkout)", strings.Join(args, " "), msg)
	}
	return string(out)
}

// containerFiles lists, relative to the repository root, the files that end up inside a container
// and are read there line by line: what docker-compose.yml bind-mounts, the Dockerfiles, every
// shell script, and the SQL schemas the services embed.
func containerFiles(t *testing.T) []string {
	t.Helper()
	root, _ := filepath.Abs(repoRoot)
	p := load(t)
	set := map[string]bool{}
	for _, s := range p.AllServices() {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			rel, err := filepath.Rel(root, v.Source)
			if err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: bind mount %s is outside the repository", s.Name, v.Source)
				continue
			}
			set[filepath.ToSlash(rel)] = true
		}
		if s.Build != nil {
			df := s.Build.Dockerfile
			if !filepath.IsAbs(df) {
				df = filepath.Join(s.Build.Context, df)
			}
			rel, _ := filepath.Rel(root, df)
			set[filepath.ToSlash(rel)] = true
		}
	}
	for _, f := range strings.Fields(git(t, "ls-files", "--", "*.sh", "*.sql", ".dockerignore")) {
		set[f] = true
	}
	files := make([]string, 0, len(set))
	for f := range set {
		files = append(files, f)
	}
	slices.Sort(files)
	return files
}

// A Windows checkout must not give the containers CRLF files: MySQL's entrypoint sources the init
// script on the first start only, and with CRLF it fails and leaves a half-initialised volume.
// .gitattributes pins these files to LF; this asks git what it will do with each of them.
func TestContainerFilesAreCheckedOutWithLF(t *testing.T) {
	files := containerFiles(t)
	for _, want := range []string{"scripts/compose/mysql-init.sh", "order-service/Dockerfile", "cart-service/Dockerfile"} {
		if !slices.Contains(files, want) {
			t.Errorf("%s is not among the files checked (%v)", want, files)
		}
	}
	// git check-attr prints "<path>: eol: <value>" for each path.
	out := git(t, append([]string{"check-attr", "eol", "--"}, files...)...)
	eol := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		parts := strings.SplitN(line, ": ", 3)
		if len(parts) == 3 {
			eol[parts[0]] = parts[2]
		}
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			if got := eol[f]; got != "lf" {
				t.Errorf("%s: .gitattributes gives it eol=%s; a Windows checkout would hand a container CRLF lines (want eol=lf)", f, got)
			}
			data, err := os.ReadFile(filepath.Join(repoRoot, f))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(data, []byte("\r")) {
				t.Errorf("%s contains a carriage return; a container would run it with CRLF lines (git add --renormalize .)", f)
			}
		})
	}
}
