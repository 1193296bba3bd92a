package store

// maxJSONDepth is encoding/json's nesting limit: json.Valid refuses a
// document with more containers open at once, and so does validJSON.
const maxJSONDepth = 10000

// validJSON reports whether data is exactly one JSON value with optional
// whitespace around it: the answer of json.Valid (which it is fuzzed
// against), without its scanner's per-byte indirect calls. Like
// json.Valid it checks the grammar, not the UTF-8 inside strings. It is
// iterative, so nesting costs heap, not stack.
func validJSON(data []byte) bool {
	var open []byte // the containers open, innermost last: '{' or '['
	i := skipSpace(data, 0)
	value := true // the next thing is a value; else what follows one
	for {
		if value {
			if i >= len(data) {
				return false
			}
			switch c := data[i]; c {
			case '{', '[':
				if len(open) >= maxJSONDepth {
					return false
				}
				i = skipSpace(data, i+1)
				if i < len(data) && data[i] == c+2 { // '}' or ']'
					i++
					value = false
					continue
				}
				open = append(open, c)
				if c == '{' {
					if i = objectKey(data, i); i < 0 {
						return false
					}
				}
				continue
			case '"':
				i = skipString(data, i)
			case 't':
				i = literal(data, i, "true")
			case 'f':
				i = literal(data, i, "false")
			case 'n':
				i = literal(data, i, "null")
			default:
				i = skipNumber(data, i)
			}
			if i < 0 {
				return false
			}
			value = false
			continue
		}
		i = skipSpace(data, i)
		if len(open) == 0 {
			return i == len(data)
		}
		if i >= len(data) {
			return false
		}
		top := open[len(open)-1]
		switch c := data[i]; {
		case c == ',':
			i = skipSpace(data, i+1)
			if top == '{' {
				if i = objectKey(data, i); i < 0 {
					return false
				}
			}
			value = true
		case c == top+2: // the container's close
			open = open[:len(open)-1]
			i++
		default:
			return false
		}
	}
}

// objectKey reads `"key" :` and the space after, from i at the key's
// quote; it returns the index of the member's value, or -1.
func objectKey(data []byte, i int) int {
	if i >= len(data) || data[i] != '"' {
		return -1
	}
	if i = skipString(data, i); i < 0 {
		return -1
	}
	i = skipSpace(data, i)
	if i >= len(data) || data[i] != ':' {
		return -1
	}
	return skipSpace(data, i+1)
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string whose opening quote is
// at i, or -1.
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		if plainStringByte[data[i]] {
			continue
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(data) {
				return -1
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(data) {
					return -1
				}
				for _, h := range data[i+1 : i+5] {
					if !isHex(h) {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// plainStringByte marks the bytes a string holds as they are: not a
// control character, quote or backslash.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// skipNumber returns the index after the number at i, or -1:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(data []byte, i int) int {
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return -1
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i = skipDigits(data, i)
	default:
		return -1
	}
	if i < len(data) && data[i] == '.' {
		if i+1 >= len(data) || !isDigit(data[i+1]) {
			return -1
		}
		i = skipDigits(data, i+1)
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			return -1
		}
		i = skipDigits(data, i)
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func skipDigits(data []byte, i int) int {
	for i < len(data) && isDigit(data[i]) {
		i++
	}
	return i
}

// literal returns the index after word at i, or -1.
func literal(data []byte, i int, word string) int {
	if len(data)-i < len(word) || string(data[i:i+len(word)]) != word {
		return -1
	}
	return i + len(word)
}
