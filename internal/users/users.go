// Package users looks up guest users in /etc/passwd and /etc/group (a static
// binary has no NSS) and resolves request paths the way E2B does
// (PROTOCOL.md 3.0). It caches id→name lookups for entry listings.
package users

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sandboxd/envd/internal/errs"
)

// User is one passwd record plus its group memberships.
type User struct {
	Name   string
	UID    uint32
	GID    uint32
	Home   string
	Groups []uint32 // primary gid first, then supplementary groups
}

// DB reads the user database. The files are re-read when they change, so a
// user added inside the guest is found without restarting envd.
type DB struct {
	passwd, group string

	mu       sync.Mutex // guards everything below
	loadedAt time.Time
	pwMod    time.Time
	grMod    time.Time
	byName   map[string]*User
	uidName  map[uint32]string
	gidName  map[uint32]string
}

// New returns a DB over the given files ("" means /etc/passwd, /etc/group).
func New(passwdPath, groupPath string) *DB {
	if passwdPath == "" {
		passwdPath = "/etc/passwd"
	}
	if groupPath == "" {
		groupPath = "/etc/group"
	}
	return &DB{passwd: passwdPath, group: groupPath}
}

// Lookup finds a user by name. Unknown users wrap errs.Unauthenticated,
// which is what every route answers for them.
func (d *DB) Lookup(name string) (*User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.refreshLocked(); err != nil {
		return nil, err
	}
	u, ok := d.byName[name]
	if !ok {
		return nil, errs.New(errs.Unauthenticated, "invalid username: '%s'", name)
	}
	return u, nil
}

// UserName returns the name for a uid, or the number as a string.
func (d *DB) UserName(uid uint32) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	_ = d.refreshLocked()
	if n, ok := d.uidName[uid]; ok {
		return n
	}
	return strconv.FormatUint(uint64(uid), 10)
}

// GroupName returns the name for a gid, or the number as a string.
func (d *DB) GroupName(gid uint32) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	_ = d.refreshLocked()
	if n, ok := d.gidName[gid]; ok {
		return n
	}
	return strconv.FormatUint(uint64(gid), 10)
}

// refreshLocked re-reads the files at most once a second, and only if their
// modification time changed.
func (d *DB) refreshLocked() error {
	now := time.Now()
	if d.byName != nil && now.Sub(d.loadedAt) < time.Second {
		return nil
	}
	d.loadedAt = now
	pst, err := os.Stat(d.passwd)
	if err != nil {
		return errs.New(errs.Unavailable, "reading user database: %v", err)
	}
	gst, gerr := os.Stat(d.group)
	var gmod time.Time
	if gerr == nil {
		gmod = gst.ModTime()
	}
	if d.byName != nil && pst.ModTime().Equal(d.pwMod) && gmod.Equal(d.grMod) {
		return nil
	}
	byName, uidName, err := readPasswd(d.passwd)
	if err != nil {
		return errs.New(errs.Unavailable, "reading user database: %v", err)
	}
	gidName, members := readGroup(d.group)
	for _, u := range byName {
		u.Groups = []uint32{u.GID}
		for _, gid := range members[u.Name] {
			if gid != u.GID {
				u.Groups = append(u.Groups, gid)
			}
		}
	}
	d.byName, d.uidName, d.gidName = byName, uidName, gidName
	d.pwMod, d.grMod = pst.ModTime(), gmod
	return nil
}

func readPasswd(path string) (map[string]*User, map[uint32]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	byName := map[string]*User{}
	uidName := map[uint32]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// name:password:uid:gid:gecos:home:shell
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 7 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		uid, err1 := strconv.ParseUint(fields[2], 10, 32)
		gid, err2 := strconv.ParseUint(fields[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		u := &User{Name: fields[0], UID: uint32(uid), GID: uint32(gid), Home: fields[5]}
		if _, dup := byName[u.Name]; !dup {
			byName[u.Name] = u
		}
		if _, dup := uidName[u.UID]; !dup {
			uidName[u.UID] = u.Name
		}
	}
	return byName, uidName, sc.Err()
}

func readGroup(path string) (map[uint32]string, map[string][]uint32) {
	gidName := map[uint32]string{}
	members := map[string][]uint32{}
	f, err := os.Open(path)
	if err != nil {
		return gidName, members
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// name:password:gid:member,member
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 4 {
			continue
		}
		gid, err := strconv.ParseUint(fields[2], 10, 32)
		if err != nil {
			continue
		}
		if _, dup := gidName[uint32(gid)]; !dup {
			gidName[uint32(gid)] = fields[0]
		}
		for _, m := range strings.Split(fields[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				members[m] = append(members[m], uint32(gid))
			}
		}
	}
	return gidName, members
}

// Resolve applies PROTOCOL.md 3.0: empty → workdir; "~" and "~/x" → home;
// "~name" → invalid; absolute paths are returned unchanged; relative paths
// are joined to the user's home (never the workdir) and cleaned.
func Resolve(p string, u *User, workdir string) (string, error) {
	if p == "" {
		p = workdir
	}
	if strings.HasPrefix(p, "~") {
		switch {
		case p == "~":
			p = u.Home
		case strings.HasPrefix(p, "~/"):
			p = filepath.Join(u.Home, p[2:])
		default:
			return "", errs.New(errs.Invalid, "path '%s' refers to another user's home, which is not supported", p)
		}
	}
	if filepath.IsAbs(p) {
		return p, nil
	}
	return filepath.Join(u.Home, p), nil
}
