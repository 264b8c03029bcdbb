package daemon

import (
	"fmt"
	"os"

	"github.com/sandboxd/envd/internal/execctx"
	"github.com/sandboxd/envd/internal/process"
	"github.com/sandboxd/envd/internal/users"
)

// BootCmdTag tags the --cmd process in the process table.
const BootCmdTag = "startCmd"

// startBootCmd starts --cmd the way Wrenn-Go did (BEHAVIOR.md 1.6, picked
// over Wrenn-RS because the process is then visible): `/bin/bash -l -c CMD`
// (/bin/sh without bash) as root, in /home/user (root's home when that does
// not exist), tagged "startCmd", listed and connectable like any process.
// Its output is dropped until a client connects. A failure to start is
// fatal, as in Wrenn-Go.
func startBootCmd(cmd string, procs *process.Manager, db *users.DB, d *execctx.Defaults) error {
	root, err := db.Lookup("root")
	if err != nil {
		return fmt.Errorf("--cmd: %w", err)
	}
	dir := "/home/user"
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = root.Home
	}
	shell := "/bin/bash"
	if _, err := os.Stat(shell); err != nil {
		shell = "/bin/sh"
	}
	tag := BootCmdTag
	sub, err := procs.Start(process.StartOptions{
		Config:    process.Config{Cmd: shell, Args: []string{"-l", "-c", cmd}},
		User:      root,
		Dir:       dir,
		GlobalEnv: d.Env(),
		Tag:       &tag,
	})
	if err != nil {
		return fmt.Errorf("--cmd: %w", err)
	}
	sub.Close()
	return nil
}
