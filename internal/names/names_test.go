package names

import (
	"os"
	"path/filepath"
	"testing"
)

const encA = "ECRYPTFS_FNEK_ENCRYPTED.FWZGt-eJ95wbI-QWsHDCh4S9d-38-1QVJlFD1KpFG.RKBLmqmYkMDXunv---"
const encB = "ECRYPTFS_FNEK_ENCRYPTED.FXZGt-eJ95wbI-QWsHDCh4S9d-38-1QVJlFDJFnYcai2htodJXCNv19bVpIjN8zq"

func TestLearnTranslateSave(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cache", FileName)
	m, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	m.Learn(encA+"/"+encB, "Documents/thesis.odt")
	got, ok := m.Translate("/.Private/" + encA + "/" + encB)
	if !ok || got != "/.Private/Documents/thesis.odt" {
		t.Fatalf("Translate = %q, %v", got, ok)
	}
	if _, ok := m.Translate("/.Private/" + encA + "/ECRYPTFS_FNEK_ENCRYPTED.FWunknownname"); ok {
		t.Error("an unknown encrypted component reported as translated")
	}
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("map file mode %v (%v), want 0600", fi.Mode(), err)
	}
	m2, err := Load(p)
	if err != nil || m2.Len() != 2 {
		t.Fatalf("reloaded map: %d names, %v", m2.Len(), err)
	}
	// Depth mismatch teaches nothing.
	m2.Learn(encA, "a/b")
	if got, _ := m2.Translate(encA); got != "Documents" {
		t.Errorf("a mismatched pair changed the map: %q", got)
	}
}

func TestLowerMount(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mounts")
	os.WriteFile(p, []byte("/dev/vda / ext4 rw 0 0\n/home/me/.Private /home/me ecryptfs rw,ecryptfs_sig=x 0 0\n/srv/low\\040er /srv/with\\040space ecryptfs rw 0 0\n"), 0o644)
	if got, _ := LowerMount(p, "/home/me/.Private/"); got != "/home/me" {
		t.Errorf("LowerMount = %q", got)
	}
	if got, _ := LowerMount(p, "/srv/low er"); got != "/srv/with space" {
		t.Errorf("escaped LowerMount = %q", got)
	}
	if got, _ := LowerMount(p, "/home/other"); got != "" {
		t.Errorf("no mount: %q", got)
	}
	if ms, _ := EcryptfsMounts(p); len(ms) != 2 {
		t.Errorf("EcryptfsMounts = %v", ms)
	}
}

func TestClearInodes(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "Documents"), 0o755)
	os.WriteFile(filepath.Join(root, "Documents", "thesis.odt"), []byte("x"), 0o644)
	m, err := ClearInodes(root)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(root, "Documents", "thesis.odt"))
	var found bool
	for _, p := range m {
		if p == "/Documents/thesis.odt" {
			found = true
		}
	}
	if !found || len(m) != 2 || fi == nil {
		t.Fatalf("ClearInodes = %v", m)
	}
}
