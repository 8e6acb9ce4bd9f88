package events

import "errors"

// ErrCorrupt is wrapped by Unmarshal when a stored record fails its CRC, has
// an unknown version, or is truncated.
var ErrCorrupt = errors.New("events: corrupt record")

// ErrInvalid is wrapped by Validate for every validation failure, so callers
// can tell bad input from I/O errors with errors.Is.
var ErrInvalid = errors.New("events: invalid event")

// ErrTooLarge is wrapped by Validate when an event's encoded size exceeds the
// limit given to it.
var ErrTooLarge = errors.New("events: event too large")
