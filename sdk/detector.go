package sdk

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/driftd/driftd/sdk/proto"
)

// Kind says what a plugin provides.
type Kind string

// The plugin kinds driftd knows.
const (
	KindDetector Kind = "detector"
	KindSink     Kind = "sink"
)

// Info describes a plugin. Name is the part after "driftd-plugin-" in the
// binary's file name.
type Info struct {
	Name        string
	Kind        Kind
	Version     string
	Description string
	// Domain restricts the values a detector takes. The daemon rejects
	// other values of the metric at ingestion, with an error naming the
	// detector, so a detector never sees them.
	Domain Domain
}

// Domain is the set of values a detector takes.
type Domain string

// The domains.
const (
	// DomainReal is any finite number, the default.
	DomainReal Domain = ""
	// DomainBinary is 0 or 1, for detectors of error or success rates.
	DomainBinary Domain = "binary"
)

// Check reports the first value outside the domain, wrapping ErrBadRequest.
func (d Domain) Check(values []float64) error {
	if err := CheckValues(values); err != nil {
		return err
	}
	if d != DomainBinary {
		return nil
	}
	for i, v := range values {
		if v != 0 && v != 1 {
			return fmt.Errorf("value %d is %v, not 0 or 1: %w", i, v, ErrBadRequest)
		}
	}
	return nil
}

// Contains reports whether v is in the domain.
func (d Domain) Contains(v float64) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0) && (d != DomainBinary || v == 0 || v == 1)
}

// SignalType is what a detector reports about a value.
type SignalType string

// The signals a detector can raise.
const (
	SignalDrift   SignalType = "drift"
	SignalWarning SignalType = "warning"
)

// Batch is a run of consecutive values of one stream. Stream is an opaque key
// chosen by the daemon; Start is the stream index of Values[0], so Values[i]
// has index Start+i.
type Batch struct {
	Stream string
	// ID, when not 0, is a number the daemon gives the stream: the same in
	// every batch of the stream, and small (handed out in order from 1).
	// A detector may use it to find a stream's state without hashing
	// Stream, as Streams does. A number may name another stream later, so
	// a detector that keys state by ID checks Stream too.
	ID     uint32
	Start  uint64
	Values []float64
}

// Signal is a drift or warning raised by the value at Index of Stream.
// Details carries the detector's own figures (statistic, threshold, ...).
// A detector whose stream states give their figures as pairs
// (PairSignaler) has them in Pairs instead, and Details nil: DetailsMap
// returns them as a map either way. The signals a Detector's Update
// returns, their Details and Pairs, are the caller's: the detector must
// not change them afterwards (a state that reuses an array for its
// figures hands out a copy, as Streams does).
type Signal struct {
	Stream  string
	Index   uint64
	Type    SignalType
	Details map[string]float64
	// Pairs, when Details is nil, are the figures in the order the
	// detector gave them; a key given twice counts with its last value.
	Pairs []Detail
}

// Detail is one of a signal's figures: its name (Key) and value (Value).
type Detail = proto.Detail

// DetailsMap returns the signal's figures as a map: Details, or else Pairs
// made into one (nil when there are none).
func (s Signal) DetailsMap() map[string]float64 {
	if s.Details != nil || len(s.Pairs) == 0 {
		return s.Details
	}
	m := make(map[string]float64, len(s.Pairs))
	for _, d := range s.Pairs {
		m[d.Key] = d.Value
	}
	return m
}

// Detector is the contract of a detector plugin.
//
// A detector keeps its own state per stream. Update gets batches in stream
// order; the result must not depend on how values were split into batches.
// After a drift the detector resets that stream's state itself, as River's
// detectors do, so one change gives one signal.
type Detector interface {
	Plugin
	// Update feeds values and returns the signals they raised, in order.
	// batches and the Values slices it holds belong to the caller and
	// are reused once Update returns: copy what must outlive the call.
	Update(ctx context.Context, batches []Batch) ([]Signal, error)
}

// Resetter is implemented by detectors that can forget a stream, so its next
// value starts it afresh. Detectors built with Streams implement it.
type Resetter interface {
	Reset(ctx context.Context, stream string) error
}

// CheckValues reports the first value that is not finite. The daemon never
// sends one; detectors may call it to guard against other callers.
func CheckValues(values []float64) error {
	for i, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("value %d is %v: %w", i, v, ErrNonFinite)
		}
	}
	return nil
}

// ErrNonFinite is returned for NaN and infinite values.
var ErrNonFinite = errors.New("value is not finite")
