package pattern

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// ErrBadSize is wrapped by every error ParseSize returns.
var ErrBadSize = errors.New("invalid size")

// sizeUnits maps a unit letter to its multiplier. Units are binary, as in
// restic: "1K" is 1024 bytes.
var sizeUnits = map[byte]int64{
	'k': 1 << 10,
	'm': 1 << 20,
	'g': 1 << 30,
	't': 1 << 40,
	'p': 1 << 50,
	'e': 1 << 60,
}

// ParseSize parses the argument of --exclude-larger-than: a decimal number
// of bytes, optionally followed by a unit K, M, G, T, P or E (powers of
// 1024), which may itself be followed by "B" or "iB". Letters are
// case-insensitive and blanks around the number and the unit are allowed:
// "100", "100B", "500K", "2m", "1.5G", "1 GiB", "3tb". A fraction is only
// accepted together with a unit and the result is rounded down to whole
// bytes ("0.1K" is 102). Negative sizes and sizes above math.MaxInt64 are
// errors.
func ParseSize(s string) (int64, error) {
	fail := func(why string) (int64, error) {
		return 0, fmt.Errorf("%w %q: %s (write a number of bytes with an optional unit, like 500K, 2M, 1.5G or 1T)", ErrBadSize, s, why)
	}
	t := strings.TrimSpace(s)
	if t == "" {
		return fail("empty")
	}

	// Split into the number and the unit.
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		if t[0] == '-' {
			return fail("negative")
		}
		return fail("no number")
	}
	intPart, frac, hasDot := strings.Cut(num, ".")
	if strings.Contains(frac, ".") {
		return fail("more than one decimal point")
	}
	if intPart == "" && frac == "" {
		return fail("no digits")
	}

	mult := int64(1)
	switch {
	case unit == "" || unit == "b":
	case len(unit) >= 1 && sizeUnits[unit[0]] != 0 && (len(unit) == 1 || unit[1:] == "b" || unit[1:] == "ib"):
		mult = sizeUnits[unit[0]]
	default:
		return fail(fmt.Sprintf("unknown unit %q", t[i:]))
	}
	if hasDot && mult == 1 && strings.Trim(frac, "0") != "" {
		return fail("a fraction of a byte")
	}

	// Exact arithmetic: digits / 10^len(frac) * mult, rounded down. big.Int
	// avoids both float rounding and overflow on absurdly long inputs.
	digits, ok := new(big.Int).SetString(intPart+frac+"0", 10) // "+0" so "" parses
	if !ok {
		return fail("not a number")
	}
	digits.Mul(digits, big.NewInt(mult))
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac)+1)), nil)
	digits.Quo(digits, scale)
	if !digits.IsInt64() {
		return fail("too large")
	}
	return digits.Int64(), nil
}
