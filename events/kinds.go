package events

import (
	"encoding/json"
	"fmt"
	"time"
)

// Default topics of the agent event kinds, as their publishers use today.
const (
	TopicAgentAction             = "onex.evt.omniclaude.agent-action.v1"
	TopicTransformationStarted   = "onex.evt.omniclaude.transformation-started.v1"
	TopicTransformationCompleted = "onex.evt.omniclaude.transformation-completed.v1"
	TopicTransformationFailed    = "onex.evt.omniclaude.transformation-failed.v1"
	TypeAgentAction              = "onex.agent.action"
	TypeTransformationPrefix     = "onex.agent.transformation."
	ContentTypeJSON              = "application/json"
	DefaultUserRequestMaxChars   = 100
	defaultAgentSource           = "boltrelay/agent"
)

// Action types an ActionEvent may carry.
const (
	ActionToolCall = "tool_call"
	ActionDecision = "decision"
	ActionError    = "error"
	ActionSuccess  = "success"
)

// ActionEvent is one action an agent took (a tool call, a decision, an error
// or a success). Its JSON form is the event's Data.
type ActionEvent struct {
	AgentName        string          `json:"agent_name"`
	ActionType       string          `json:"action_type"`
	ActionName       string          `json:"action_name"`
	ActionDetails    json.RawMessage `json:"action_details,omitempty"`
	CorrelationID    string          `json:"correlation_id"`
	DurationMS       int64           `json:"duration_ms"`
	ProjectPath      string          `json:"project_path,omitempty"`
	ProjectName      string          `json:"project_name,omitempty"`
	WorkingDirectory string          `json:"working_directory,omitempty"`
	Timestamp        time.Time       `json:"timestamp"`
}

// Phase is the phase of a transformation: started, completed or failed.
type Phase string

// The transformation phases, each delivered to its own topic by default.
const (
	PhaseStarted   Phase = "started"
	PhaseCompleted Phase = "completed"
	PhaseFailed    Phase = "failed"
)

// TransformationEvent records one agent handing a request to another.
type TransformationEvent struct {
	Phase                Phase     `json:"phase"`
	SourceAgent          string    `json:"source_agent"`
	TargetAgent          string    `json:"target_agent"`
	TransformationReason string    `json:"transformation_reason,omitempty"`
	CorrelationID        string    `json:"correlation_id"`
	SessionID            string    `json:"session_id,omitempty"`
	UserRequest          string    `json:"user_request,omitempty"`
	RoutingConfidence    *float64  `json:"routing_confidence,omitempty"`
	RoutingStrategy      string    `json:"routing_strategy,omitempty"`
	RoutingDurationMS    int64     `json:"routing_duration_ms,omitempty"`
	TransformDurationMS  int64     `json:"transformation_duration_ms,omitempty"`
	TotalDurationMS      int64     `json:"total_duration_ms,omitempty"`
	Success              *bool     `json:"success,omitempty"`
	ErrorMessage         string    `json:"error_message,omitempty"`
	ErrorType            string    `json:"error_type,omitempty"`
	QualityScore         *float64  `json:"quality_score,omitempty"`
	Timestamp            time.Time `json:"timestamp"`
}

// KindOption overrides a default of an agent event kind's envelope.
type KindOption func(*Event)

// WithTopic sends the event to topic instead of its kind's default.
func WithTopic(topic string) KindOption { return func(e *Event) { e.Topic = topic } }

// WithKey keys the event by key instead of its correlation ID.
func WithKey(key []byte) KindOption { return func(e *Event) { e.Key = key } }

// WithSource sets the CloudEvents source instead of "boltrelay/agent".
func WithSource(src string) KindOption { return func(e *Event) { e.Source = src } }

// NewActionEvent builds the envelope for an action event: topic
// TopicAgentAction, keyed by the correlation ID, JSON data.
func NewActionEvent(a ActionEvent, opts ...KindOption) (Event, error) {
	switch a.ActionType {
	case ActionToolCall, ActionDecision, ActionError, ActionSuccess:
	default:
		return Event{}, fmt.Errorf("%w: action_type %q is not one of tool_call, decision, error, success", ErrInvalid, a.ActionType)
	}
	if a.AgentName == "" {
		return Event{}, fmt.Errorf("%w: agent_name is empty", ErrInvalid)
	}
	if a.ActionName == "" {
		return Event{}, fmt.Errorf("%w: action_name is empty", ErrInvalid)
	}
	if len(a.ActionDetails) > 0 && !json.Valid(a.ActionDetails) {
		return Event{}, fmt.Errorf("%w: action_details is not valid JSON", ErrInvalid)
	}
	if a.Timestamp.IsZero() {
		a.Timestamp = time.Now().UTC()
	}
	return kindEvent(a, TopicAgentAction, TypeAgentAction, a.CorrelationID, a.AgentName, a.Timestamp, opts)
}

// NewTransformationEvent builds the envelope for a transformation event:
// one topic per phase, keyed by the correlation ID, JSON data. UserRequest
// is redacted with RedactUserRequest before it is encoded, so a person's
// prompt never reaches the disk unredacted.
func NewTransformationEvent(t TransformationEvent, opts ...KindOption) (Event, error) {
	var topic string
	switch t.Phase {
	case PhaseStarted:
		topic = TopicTransformationStarted
	case PhaseCompleted:
		topic = TopicTransformationCompleted
	case PhaseFailed:
		topic = TopicTransformationFailed
	default:
		return Event{}, fmt.Errorf("%w: phase %q is not one of started, completed, failed", ErrInvalid, t.Phase)
	}
	if t.SourceAgent == "" || t.TargetAgent == "" {
		return Event{}, fmt.Errorf("%w: source_agent and target_agent are required", ErrInvalid)
	}
	if c := t.RoutingConfidence; c != nil && (*c < 0 || *c > 1) {
		return Event{}, fmt.Errorf("%w: routing_confidence %v is outside 0..1", ErrInvalid, *c)
	}
	t.UserRequest = RedactUserRequest(t.UserRequest)
	if t.Timestamp.IsZero() {
		t.Timestamp = time.Now().UTC()
	}
	return kindEvent(t, topic, TypeTransformationPrefix+string(t.Phase), t.CorrelationID, t.SourceAgent, t.Timestamp, opts)
}

func kindEvent(v any, topic, typ, corr, subject string, ts time.Time, opts []KindOption) (Event, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return Event{}, fmt.Errorf("events: encode %s: %w", typ, err)
	}
	e := Event{
		Type:          typ,
		Source:        defaultAgentSource,
		Subject:       subject,
		Time:          ts,
		Topic:         topic,
		ContentType:   ContentTypeJSON,
		Data:          data,
		CorrelationID: corr,
	}
	if corr != "" {
		e.Key = []byte(corr)
	}
	for _, o := range opts {
		o(&e)
	}
	return e, nil
}
