package cli_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/cli"
)

// envRunMain makes the test binary run the CLI instead of the tests: the
// bash completion script calls "connhost __complete …", and a shell
// function named connhost runs this binary with it set.
const envRunMain = "CONNHOST_CLI_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// TestBashCompletionWithoutBashCompletionPackage: the bash script works in
// a bare bash (no bash-completion package, no rc files): it must not need
// that package's _get_comp_words_by_ref.
func TestBashCompletionWithoutBashCompletionPackage(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on this machine")
	}
	res := runCLI(t, nil, options{}, "completion", "bash")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	script := filepath.Join(t.TempDir(), "connhost.bash")
	if err := os.WriteFile(script, []byte(res.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The script runs ${words[0]} __complete …: connhost is a function
	// running this test binary as the CLI. COMP_WORDS is what bash gives
	// (it splits at "=" too); the script must rebuild the words from
	// COMP_LINE itself.
	const probe = `source "$SCRIPT" || exit 9
declare -F _get_comp_words_by_ref >/dev/null && { echo "bash-completion is loaded" >&2; exit 8; }
connhost() { CONNHOST_CLI_TEST_RUN_MAIN=1 "$SELF" "$@"; }
read -ra COMP_WORDS <<< "$LINE"
[[ "$LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$LINE"
COMP_POINT=${#LINE}
__start_connhost connhost
printf '%s\n' "${COMPREPLY[@]}"
`
	for _, tt := range []struct{ line, want string }{
		{"connhost con", "connection\nconnector\n"},
		{"connhost connector sh", "show\n"},
		{"connhost completion ", "bash\nfish\npowershell\nzsh\n"},
		{"connhost run c1 --fo", "--follow\n"},
	} {
		t.Run(tt.line, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(bash, "--norc", "--noprofile", "-c", probe)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "SCRIPT=" + script, "SELF=" + self, "LINE=" + tt.line,
				cli.EnvAddr + "=http://127.0.0.1:1"}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v\nstderr:\n%s", err, stderr.String())
			}
			if strings.Contains(stderr.String(), "command not found") || stdout.String() != tt.want {
				t.Errorf("completions %q, want %q\nstderr:\n%s", stdout.String(), tt.want, stderr.String())
			}
		})
	}
}
