package sftp

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Location is a parsed sftp repository location.
type Location struct {
	User string // "" for ssh's default (from ~/.ssh/config or the local user)
	Host string // host name or address, as ssh takes it (no brackets)
	Port string // "" for ssh's default
	Path string // absolute, or relative to the login directory; "" is the login directory
}

// ParseLocation parses the two spellings of an sftp location:
//
//	sftp:[user@]host:path              scp style; path is absolute when it starts with /
//	sftp://[user@]host[:port]/path     URL style; "//path" is absolute, "/path" is relative
//	                                   to the login directory
//
// IPv6 addresses are written in brackets: sftp:[::1]:/srv/repo.
func ParseLocation(s string) (Location, error) {
	rest, ok := strings.CutPrefix(s, "sftp:")
	if !ok {
		return Location{}, fmt.Errorf("sftp location %q: must start with sftp:", s)
	}
	var loc Location
	var err error
	if strings.HasPrefix(rest, "//") {
		loc, err = parseURL(rest)
	} else {
		loc, err = parseSCP(rest)
	}
	if err != nil {
		return Location{}, fmt.Errorf("sftp location %q: %w; use sftp:[user@]host:/path or sftp://[user@]host[:port]//path", s, err)
	}
	if err := loc.check(); err != nil {
		return Location{}, fmt.Errorf("sftp location %q: %w", s, err)
	}
	return loc, nil
}

func parseSCP(s string) (Location, error) {
	var loc Location
	if i := strings.LastIndex(hostPart(s), "@"); i >= 0 {
		loc.User, s = s[:i], s[i+1:]
	}
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return loc, errors.New("missing ] after the IPv6 address")
		}
		loc.Host, s = s[1:end], s[end+1:]
		if !strings.HasPrefix(s, ":") {
			return loc, errors.New("missing : between host and path")
		}
		loc.Path = s[1:]
		return loc, nil
	}
	host, path, ok := strings.Cut(s, ":")
	if !ok {
		return loc, errors.New("missing : between host and path")
	}
	loc.Host, loc.Path = host, path
	return loc, nil
}

// hostPart is s up to the first ':' that is not inside brackets, so that a
// '@' in the path is not taken for the user separator.
func hostPart(s string) string {
	depth := 0
	for i, c := range s {
		switch c {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				return s[:i]
			}
		}
	}
	return s
}

func parseURL(s string) (Location, error) {
	u, err := url.Parse("sftp:" + s)
	if err != nil {
		return Location{}, err
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return Location{}, errors.New("a query or fragment is not allowed")
	}
	loc := Location{Host: u.Hostname(), Port: u.Port()}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return Location{}, errors.New("passwords in the location are not supported; use an ssh key or agent")
		}
		loc.User = u.User.Username()
	}
	if loc.Port != "" {
		if n, err := strconv.Atoi(loc.Port); err != nil || n < 1 || n > 65535 {
			return Location{}, fmt.Errorf("bad port %q", loc.Port)
		}
	}
	// "/dir" is relative to the login directory, "//dir" absolute.
	loc.Path = strings.TrimPrefix(u.Path, "/")
	return loc, nil
}

func (l Location) check() error {
	switch {
	case l.Host == "":
		return errors.New("no host")
	case strings.HasPrefix(l.Host, "-"), strings.HasPrefix(l.User, "-"):
		return errors.New("host and user must not start with '-'")
	case strings.ContainsAny(l.Host+l.User, " \t\n\x00"):
		return errors.New("host and user must not contain white space")
	case strings.ContainsRune(l.Path, 0):
		return errors.New("the path contains a NUL byte")
	}
	return nil
}

// Destination is the [user@]host argument for ssh.
func (l Location) Destination() string {
	if l.User != "" {
		return l.User + "@" + l.Host
	}
	return l.Host
}

// String returns the location in the form ParseLocation reads.
func (l Location) String() string {
	host := l.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if l.Port != "" {
		user := ""
		if l.User != "" {
			user = url.User(l.User).String() + "@"
		}
		return "sftp://" + user + host + ":" + l.Port + "/" + l.Path
	}
	if l.User != "" {
		host = l.User + "@" + host
	}
	return "sftp:" + host + ":" + l.Path
}

// SplitCommand splits an --ssh-command value into words as a POSIX shell
// would for simple quoting: words are separated by blanks; single quotes keep
// everything literally; double quotes keep blanks and allow \" \\ \$ \`;
// outside quotes a backslash escapes the next character. Variables, globs and
// other shell syntax are not interpreted.
func SplitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("ssh command %q: unterminated single quote", s)
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("ssh command %q: unterminated double quote", s)
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("ssh command %q: trailing backslash", s)
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("ssh command %q: empty", s)
	}
	return words, nil
}
