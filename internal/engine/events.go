package engine

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Events: the engine publishes what happens to containers and volumes
// (create, start, die, destroy, pause, rename, health_status, …) to an
// in-memory log, as dockerd does: the last eventLogSize events are kept
// for `since`, and subscribers get new ones as they happen. Events do not
// outlive the daemon (neither do Docker's).

// eventLogSize is how many past events are kept.
const eventLogSize = 1024

// eventLog is the ring of recent events and the live subscribers.
type eventLog struct {
	mu   sync.Mutex
	ring []events.Message
	next int // where the next event goes once the ring is full
	subs map[chan events.Message]struct{}
}

func newEventLog() *eventLog {
	return &eventLog{subs: map[chan events.Message]struct{}{}}
}

// publish records m and hands it to every subscriber; a subscriber that
// does not keep up loses events rather than block the engine.
func (l *eventLog) publish(m events.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) < eventLogSize {
		l.ring = append(l.ring, m)
	} else {
		l.ring[l.next] = m
		l.next = (l.next + 1) % eventLogSize
	}
	for ch := range l.subs {
		select {
		case ch <- m:
		default:
		}
	}
}

// subscribe returns the recorded events, oldest first, and a channel of
// the ones that follow; cancel ends the subscription.
func (l *eventLog) subscribe() ([]events.Message, <-chan events.Message, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	past := make([]events.Message, 0, len(l.ring))
	past = append(past, l.ring[l.next:]...)
	past = append(past, l.ring[:l.next]...)
	ch := make(chan events.Message, 256)
	l.subs[ch] = struct{}{}
	return past, ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.subs, ch)
	}
}

// emit publishes a container event with Docker's attributes: name, image,
// the container's labels, and extra.
func (s *Service) emit(action events.Action, c *Container, extra map[string]string) {
	if s.features.events == nil || c == nil {
		return
	}
	attrs := map[string]string{"name": c.Name, "image": c.Image}
	if c.Config != nil {
		for k, v := range c.Config.Labels {
			attrs[k] = v
		}
	}
	for k, v := range extra {
		attrs[k] = v
	}
	now := time.Now()
	s.features.events.publish(events.Message{
		Type: events.ContainerEventType, Action: action, Scope: "local",
		Actor: events.Actor{ID: c.ID, Attributes: attrs},
		Time:  now.Unix(), TimeNano: now.UnixNano(),
	})
}

// emitVolume publishes a volume event.
func (s *Service) emitVolume(action events.Action, name string, extra map[string]string) {
	if s.features.events == nil {
		return
	}
	attrs := map[string]string{"driver": "local"}
	for k, v := range extra {
		attrs[k] = v
	}
	now := time.Now()
	s.features.events.publish(events.Message{
		Type: events.VolumeEventType, Action: action, Scope: "local",
		Actor: events.Actor{ID: name, Attributes: attrs},
		Time:  now.Unix(), TimeNano: now.UnixNano(),
	})
}

// emitRef publishes a container event for ref (looked up now).
func (s *Service) emitRef(action events.Action, ref string, extra map[string]string) {
	e, err := s.lookup(ref)
	if err != nil {
		return
	}
	c := s.snapshot(e)
	s.emit(action, &c, extra)
}

// EventsOptions select events, as `docker events` does.
type EventsOptions struct {
	// Since and Until bound the events' times (zero: unbounded). Without
	// Until the stream follows new events until ctx ends.
	Since, Until time.Time
	// Filters: type, event (action), container (id or name), image,
	// label (key or key=value), volume.
	Filters Filters
}

// Events returns the events that match opts: the recorded ones, then,
// unless Until is in the past, the new ones until Until or ctx ends.
func (s *Service) Events(ctx context.Context, opts EventsOptions) (iter.Seq[events.Message], error) {
	match, err := compileEventFilters(opts.Filters)
	if err != nil {
		return nil, err
	}
	if !opts.Until.IsZero() && !opts.Since.IsZero() && opts.Until.Before(opts.Since) {
		return nil, fmt.Errorf("events: until %s is before since %s: %w", opts.Until, opts.Since, errdefs.ErrInvalidArgument)
	}
	inRange := func(m *events.Message) bool {
		t := time.Unix(0, m.TimeNano)
		return (opts.Since.IsZero() || !t.Before(opts.Since)) && (opts.Until.IsZero() || !t.After(opts.Until))
	}
	return func(yield func(events.Message) bool) {
		past, live, cancel := s.features.events.subscribe()
		defer cancel()
		for _, m := range past {
			if inRange(&m) && match(&m) && !yield(m) {
				return
			}
		}
		// Only a stream without since or with until in the future
		// follows; `docker events --since X` alone follows too.
		if !opts.Until.IsZero() && !opts.Until.After(time.Now()) {
			return
		}
		var timeout <-chan time.Time
		if !opts.Until.IsZero() {
			t := time.NewTimer(time.Until(opts.Until))
			defer t.Stop()
			timeout = t.C
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.ctx.Done():
				return
			case <-timeout:
				return
			case m := <-live:
				if inRange(&m) && match(&m) && !yield(m) {
					return
				}
			}
		}
	}, nil
}

// compileEventFilters checks the filters and returns the predicate: every
// key must match, any value of a key may.
func compileEventFilters(f Filters) (func(*events.Message) bool, error) {
	var preds []func(*events.Message) bool
	for key, vals := range f {
		if len(vals) == 0 {
			continue
		}
		switch key {
		case "type":
			preds = append(preds, func(m *events.Message) bool { return anyOf(vals, string(m.Type)) })
		case "event":
			preds = append(preds, func(m *events.Message) bool {
				a := string(m.Action)
				// "health_status: healthy" matches event=health_status.
				base, _, _ := strings.Cut(a, ":")
				return anyOf(vals, a) || anyOf(vals, base)
			})
		case "container":
			preds = append(preds, func(m *events.Message) bool {
				if m.Type != events.ContainerEventType {
					return false
				}
				for _, v := range vals {
					if m.Actor.Attributes["name"] == strings.TrimPrefix(v, "/") || strings.HasPrefix(m.Actor.ID, v) {
						return true
					}
				}
				return false
			})
		case "image":
			preds = append(preds, func(m *events.Message) bool { return anyOf(vals, m.Actor.Attributes["image"]) })
		case "volume":
			preds = append(preds, func(m *events.Message) bool {
				return m.Type == events.VolumeEventType && anyOf(vals, m.Actor.ID)
			})
		case "label":
			preds = append(preds, func(m *events.Message) bool {
				for _, v := range vals {
					k, want, hasVal := strings.Cut(v, "=")
					got, ok := m.Actor.Attributes[k]
					if !ok || hasVal && got != want {
						return false
					}
				}
				return true
			})
		case "scope":
			preds = append(preds, func(m *events.Message) bool { return anyOf(vals, m.Scope) })
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", key, errdefs.ErrInvalidArgument)
		}
	}
	return func(m *events.Message) bool {
		for _, p := range preds {
			if !p(m) {
				return false
			}
		}
		return true
	}, nil
}

// emitEntry publishes a container event for e's current record.
func (s *Service) emitEntry(e *entry, action events.Action, extra map[string]string) {
	c := s.snapshot(e)
	s.emit(action, &c, extra)
}
