package configfile_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/edgeway/edgeway/core/configfile"
)

// configPathSeeds are request targets as a phone (or an attacker) sends
// them on the config port; want is the file served, "" for 404.
var configPathSeeds = []struct{ target, want string }{
	{"/SEP001122334401.cnf.xml", "SEP001122334401.cnf.xml"},
	{"/CSF_demo-1.cnf.xml", "CSF_demo-1.cnf.xml"},
	{"/phone-edge-trust.pem", "phone-edge-trust.pem"},
	{"/SEP001122334401.cnf.xml?x=1", "SEP001122334401.cnf.xml"},
	{"/" + strings.Repeat("A", 64) + ".cnf.xml", strings.Repeat("A", 64) + ".cnf.xml"},
	{"/" + strings.Repeat("A", 65) + ".cnf.xml", ""},
	{"/../phone-edge-trust.pem", ""},
	{"/./SEP1.cnf.xml", ""},
	{"/a/../SEP1.cnf.xml", ""},
	{"//SEP1.cnf.xml", ""},
	{"/x/SEP1.cnf.xml", ""},
	{"/SEP%2F1.cnf.xml", ""},
	{"/%53EP1.cnf.xml", ""},
	{"/SEP1%2ecnf.xml", ""},
	{"/SEP1.cnf.xml%00", ""},
	{"/SEP1.cnf.xml/", ""},
	{"/SEP1.cnf.xml.bak", ""},
	{"/SEP1.CNF.XML", ""},
	{"/tomcat-trust.pem", ""},
	{"/phone-edge-trust.pem/..", ""},
	{"/..%2fphone-edge-trust.pem", ""},
	{"/.cnf.xml", ""},
	{"/", ""},
	{"*", ""},
	{"http://core/SEP1.cnf.xml", "SEP1.cnf.xml"}, // absolute form: the path is still exactly /SEP1.cnf.xml
	{"http://core/a/../SEP1.cnf.xml", ""},
}

// parseTarget parses a request target the way the core's HTTP server does;
// ok false when the server would refuse the request line itself.
func parseTarget(target string) (*http.Request, bool) {
	if strings.ContainsAny(target, " \r\n") {
		return nil, false
	}
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: core\r\n\r\n")))
	return r, err == nil
}

// checkConfigPath: an accepted path maps only to <device>.cnf.xml (device
// of 1-64 [A-Za-z0-9_-]) or the trust file, is exactly the path that was
// sent (nothing decoded or cleaned), and holds no "..", second "/", "\\",
// "%" or control character.
func checkConfigPath(t *testing.T, target string) (file string) {
	t.Helper()
	r, ok := parseTarget(target)
	if !ok {
		return ""
	}
	file, device, ok := configfile.ConfigRequestFile(r.URL)
	if !ok {
		if file != "" || device != "" {
			t.Fatalf("refused %q but returned %q, %q", target, file, device)
		}
		return ""
	}
	p := r.URL.Path
	if p != "/"+file {
		t.Fatalf("%q: file %q is not the path %q", target, file, p)
	}
	sent := r.URL.EscapedPath()
	if sent != p {
		t.Fatalf("%q: accepted an escaped path %q (decoded %q)", target, sent, p)
	}
	for _, bad := range []string{"..", "\\", "%", "//"} {
		if strings.Contains(file, bad) {
			t.Fatalf("%q: accepted file %q contains %q", target, file, bad)
		}
	}
	if strings.Contains(file, "/") {
		t.Fatalf("%q: accepted file %q is not at the root", target, file)
	}
	for _, c := range file {
		if c < 0x21 || c > 0x7e {
			t.Fatalf("%q: accepted file %q contains %U", target, file, c)
		}
	}
	switch {
	case file == "phone-edge-trust.pem":
		if device != "" {
			t.Fatalf("trust file with device %q", device)
		}
	case file == device+".cnf.xml":
		if len(device) < 1 || len(device) > 64 {
			t.Fatalf("%q: device %q of length %d", target, device, len(device))
		}
		for _, c := range device {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				t.Fatalf("%q: device %q has %q", target, device, c)
			}
		}
		if d, ok := configfile.ConfigFileDevice(p); !ok || d != device {
			t.Fatalf("%q: ConfigFileDevice disagrees: %q %v", target, d, ok)
		}
	default:
		t.Fatalf("%q: accepted file %q (device %q) is neither a device config nor the trust file", target, file, device)
	}
	return file
}

func TestConfigRequestFile(t *testing.T) {
	for _, s := range configPathSeeds {
		if got := checkConfigPath(t, s.target); got != s.want {
			t.Errorf("%q: serves %q, want %q", s.target, got, s.want)
		}
	}
}

// FuzzConfigPath fuzzes the config port's path rule (issue 9: config
// path); seeds in testdata/fuzz/FuzzConfigPath and above.
func FuzzConfigPath(f *testing.F) {
	for _, s := range configPathSeeds {
		f.Add(s.target)
	}
	f.Fuzz(func(t *testing.T, target string) {
		checkConfigPath(t, target)
	})
}
