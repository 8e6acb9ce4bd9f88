package events

import (
	"regexp"
	"sync"
	"unicode/utf8"
)

// secretPatterns match tokens that look like credentials. They err on the
// side of redacting: a false positive costs a few characters of a prompt,
// a false negative puts a secret on disk.
//
// They are compiled on first use, not at init: a short-lived `relay
// publish` that never redacts should not pay for compiling them.
var secretPatterns = sync.OnceValue(func() []*regexp.Regexp {
	return compileAll(secretSources)
})

func compileAll(srcs []string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(srcs))
	for i, s := range srcs {
		out[i] = regexp.MustCompile(s)
	}
	return out
}

var secretSources = []string{
	`sk-[A-Za-z0-9_\-]{16,}`,                                        // OpenAI / Anthropic style keys
	`gh[pousr]_[A-Za-z0-9]{20,}`,                                    // GitHub tokens
	`(?:AKIA|ASIA)[A-Z0-9]{16}`,                                     // AWS access key IDs
	`xox[abprs]-[A-Za-z0-9\-]{10,}`,                                 // Slack tokens
	`eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}`, // JWTs
	`(?i)bearer\s+[A-Za-z0-9._~+/\-]{16,}=*`,
	`(?i)(password|passwd|secret|token|api[_-]?key)\s*[=:]\s*\S+`,
}

// Redacted replaces every secret-looking token.
const Redacted = "[REDACTED]"

// Redact replaces secret-looking tokens in s with "[REDACTED]".
func Redact(s string) string {
	for _, re := range secretPatterns() {
		s = re.ReplaceAllString(s, Redacted)
	}
	return s
}

// RedactUserRequest is the default treatment of a person's prompt before it
// is stored: Redact, then cut to DefaultUserRequestMaxChars characters
// (runes, never splitting a UTF-8 sequence).
func RedactUserRequest(s string) string {
	return Truncate(Redact(s), DefaultUserRequestMaxChars)
}

// Truncate cuts s to at most n runes.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}
