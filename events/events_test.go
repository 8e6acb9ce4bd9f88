package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sample() Event {
	return Event{
		ID: NewID(), Type: "t", Source: "s", Subject: "subj", Time: time.Unix(1700000000, 123).UTC(),
		Topic: "orders", Key: []byte("k1"), ContentType: "text/plain", Data: []byte("hello"),
		Headers:       []Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: nil}},
		CorrelationID: "c-1",
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, e := range []Event{sample(), {Topic: "x"}, {Topic: "x", Key: []byte{}, Data: []byte{}}} {
		b := Marshal(&e)
		if len(b) != EncodedSize(&e) {
			t.Fatalf("EncodedSize %d, Marshal %d", EncodedSize(&e), len(b))
		}
		got, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", got, e)
		}
	}
}

func TestCodecRejectsDamage(t *testing.T) {
	e := sample()
	b := Marshal(&e)
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		if _, err := Unmarshal(c); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipping byte %d: err %v, want ErrCorrupt", i, err)
		}
	}
	for n := 0; n < len(b); n++ {
		if _, err := Unmarshal(b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: err %v, want ErrCorrupt", n, err)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	e := sample()
	f.Add(Marshal(&e))
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// Whatever decodes must re-encode to the same bytes.
		if again := Marshal(&got); !bytes.Equal(again, b) {
			t.Fatalf("decoded record re-encodes differently")
		}
	})
}

func TestNewIDOrderedAndV7(t *testing.T) {
	prev := ""
	for i := 0; i < 20000; i++ {
		id := NewID()
		if id <= prev {
			t.Fatalf("id %d %s not after %s", i, id, prev)
		}
		prev = id
		if _, err := IDTime(id); err != nil {
			t.Fatal(err)
		}
	}
	ts, _ := IDTime(prev)
	if d := time.Since(ts); d < -2*time.Second || d > 2*time.Second {
		t.Fatalf("id time %v is %v from now", ts, d)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Event)
		want string
	}{
		{"empty topic", func(e *Event) { e.Topic = "" }, "topic is empty"},
		{"bad topic char", func(e *Event) { e.Topic = "a b" }, "topic \"a b\""},
		{"long topic", func(e *Event) { e.Topic = strings.Repeat("a", 250) }, "249"},
		{"empty header", func(e *Event) { e.Headers = []Header{{Key: ""}} }, "header name is empty"},
		{"reserved header", func(e *Event) { e.Headers = []Header{{Key: "ce_id"}} }, "reserved"},
		{"header with =", func(e *Event) { e.Headers = []Header{{Key: "a=b"}} }, "header name"},
		{"control in type", func(e *Event) { e.Type = "a\nb" }, "type"},
	}
	for _, c := range cases {
		e := sample()
		c.mod(&e)
		err := e.Validate(0)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want ErrInvalid mentioning %q", c.name, err, c.want)
		}
	}
	e := sample()
	if err := e.Validate(0); err != nil {
		t.Fatal(err)
	}
	e.Data = make([]byte, 1000)
	if err := e.Validate(500); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
}

func TestKinds(t *testing.T) {
	a, err := NewActionEvent(ActionEvent{AgentName: "coder", ActionType: ActionToolCall, ActionName: "Read",
		ActionDetails: json.RawMessage(`{"file":"/x"}`), CorrelationID: "corr-1", DurationMS: 12})
	if err != nil {
		t.Fatal(err)
	}
	if a.Topic != TopicAgentAction || string(a.Key) != "corr-1" || a.ContentType != ContentTypeJSON {
		t.Fatalf("action envelope %+v", a)
	}
	var back ActionEvent
	if err := json.Unmarshal(a.Data, &back); err != nil || back.ActionName != "Read" {
		t.Fatalf("action data %s: %v", a.Data, err)
	}
	if _, err := NewActionEvent(ActionEvent{AgentName: "x", ActionType: "nope", ActionName: "y"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad action type: %v", err)
	}
	secret := "please use sk-abcdefghijklmnopqrstuvwx to call it " + strings.Repeat("x", 200)
	tr, err := NewTransformationEvent(TransformationEvent{Phase: PhaseFailed, SourceAgent: "a", TargetAgent: "b",
		CorrelationID: "corr-2", UserRequest: secret}, WithTopic("custom"), WithKey([]byte("k")))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Topic != "custom" || string(tr.Key) != "k" {
		t.Fatalf("overrides not applied: %+v", tr)
	}
	var tb TransformationEvent
	_ = json.Unmarshal(tr.Data, &tb)
	if strings.Contains(tb.UserRequest, "sk-") || len([]rune(tb.UserRequest)) > DefaultUserRequestMaxChars || !strings.Contains(tb.UserRequest, Redacted) {
		t.Fatalf("user_request not redacted/cut: %q", tb.UserRequest)
	}
	def, _ := NewTransformationEvent(TransformationEvent{Phase: PhaseStarted, SourceAgent: "a", TargetAgent: "b"})
	if def.Topic != TopicTransformationStarted {
		t.Fatalf("started topic %q", def.Topic)
	}
}

func TestRedact(t *testing.T) {
	for _, s := range []string{"ghp_0123456789abcdefghijABCD", "AKIAABCDEFGHIJKLMNOP", "Authorization: Bearer abcdefghijklmnopqrstuvwxyz", "password=hunter2"} {
		if got := Redact("x " + s + " y"); strings.Contains(got, s) || !strings.Contains(got, Redacted) {
			t.Errorf("Redact(%q) = %q", s, got)
		}
	}
	if got := Truncate("héllo", 2); got != "hé" {
		t.Fatalf("Truncate = %q", got)
	}
}
