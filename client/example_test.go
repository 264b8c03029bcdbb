package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sandboxd/envd/client"
)

// The examples run against an envd that the test harness starts; addr is
// its address (in real code: "localhost:49983" inside the sandbox, or the
// VM's address on the host) and exampleDir a scratch directory.

func Example() {
	c, err := client.New(addr) // add client.WithToken(token) once /init set one
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	res, err := c.Run(context.Background(), client.Command{
		Cmd:  "/bin/sh",
		Args: []string{"-c", "echo hello; exit 3"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s(exit %d)\n", res.Stdout, res.Code)
	// Output:
	// hello
	// (exit 3)
}

func ExampleClient_Start() {
	c, _ := client.New(addr)
	defer c.Close()
	ctx := context.Background()
	p, err := c.Start(ctx, client.Command{Cmd: "tr", Args: []string{"a-z", "A-Z"}, Stdin: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := p.SendInput(ctx, []byte("shout\n")); err != nil {
		log.Fatal(err)
	}
	if err := p.CloseStdin(ctx); err != nil {
		log.Fatal(err)
	}
	out, _ := io.ReadAll(p.Stdout()) // to EOF, then Wait
	exit, err := p.Wait()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s%v\n", out, exit)
	// Output:
	// SHOUT
	// exit status 0
}

func ExampleClient_Start_callbacks() {
	c, _ := client.New(addr)
	defer c.Close()
	lines := 0
	p, err := c.Start(context.Background(), client.Command{
		Cmd:    "seq",
		Args:   []string{"3"},
		Stdout: client.WriterFunc(func(b []byte) { lines += strings.Count(string(b), "\n") }),
		Stderr: os.Stderr,
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := p.Wait(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(lines, "lines")
	// Output: 3 lines
}

func ExampleClient_Connect() {
	c, _ := client.New(addr)
	defer c.Close()
	ctx := context.Background()
	bg, err := c.Start(ctx, client.Command{Cmd: "/bin/sh", Args: []string{"-c", "read x; echo got $x"},
		Tag: "example-job", Stdin: true, Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		log.Fatal(err)
	}
	bg.Close() // stop listening; the process keeps running

	p, err := c.Connect(ctx, client.Tag("example-job"), client.ConnectOptions{Stdout: os.Stdout})
	if err != nil {
		log.Fatal(err)
	}
	_ = c.SendStdin(ctx, client.Tag("example-job"), []byte("ping\n"))
	exit, _ := p.Wait()
	fmt.Println(exit.Code)
	// Output:
	// got ping
	// 0
}

func ExampleClient_Write() {
	c, _ := client.New(addr)
	defer c.Close()
	ctx := context.Background()
	path := filepath.Join(exampleDir, "notes/hello.txt")
	if _, err := c.Write(ctx, path, strings.NewReader("hello, sandbox\n")); err != nil {
		log.Fatal(err)
	}
	r, err := c.Read(ctx, path)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	_, _ = io.Copy(os.Stdout, r) // streamed, never held whole
	// Output: hello, sandbox
}

func ExampleClient_Stat() {
	c, _ := client.New(addr)
	defer c.Close()
	_, err := c.Stat(context.Background(), filepath.Join(exampleDir, "missing"))
	fmt.Println(errors.Is(err, client.ErrNotFound))
	// Output: true
}

func ExampleClient_Watch() {
	c, _ := client.New(addr)
	defer c.Close()
	dir := filepath.Join(exampleDir, "watched")
	_ = os.Mkdir(dir, 0o755)
	w, err := c.Watch(context.Background(), dir, client.WatchOptions{Recursive: true})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	_, _ = c.MakeDir(context.Background(), filepath.Join(dir, "sub"))
	ev := <-w.Events()
	fmt.Println(ev.Op, ev.Name)
	// Output: CREATE sub
}

func ExampleClient_FileURL() {
	c, _ := client.New("localhost:49983", client.WithToken("0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"),
		client.WithUser("user"))
	u, _ := c.FileURL(client.URLRead, "/home/user/hello.txt", time.Time{})
	fmt.Println(u)
	// Output: http://localhost:49983/files?path=%2Fhome%2Fuser%2Fhello.txt&username=user&signature=v1_0%2B%2FdLxVunJbGExBzQBg8Lk3itjbX8C7YCojaH5GudSM
}

func ExampleClient_Health() {
	c, _ := client.New(addr)
	defer c.Close()
	h, err := c.Health(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(h.Version != "" || h.NoContent)
	// Output: true
}

func ExampleClient_Envs() {
	c, _ := client.New(addr)
	defer c.Close()
	ctx := context.Background()
	if err := c.Init(ctx, client.InitRequest{EnvVars: map[string]string{"STAGE": "example"}}); err != nil {
		log.Fatal(err)
	}
	envs, _ := c.Envs(ctx)
	fmt.Println(envs["STAGE"])
	// Output: example
}
