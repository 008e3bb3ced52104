// Package wire is what fleet hosts exchange about metrics: which partition
// a model version belongs to, the subjects lines travel on, and the binary
// form of an accepted metric in the local spool and in the messages
// forwarded to JetStream.
//
// A lines message holds records of one partition, in the order the origin
// host accepted them, each with its sequence in the origin's spool. Its
// header names the origin (Origin). An owner applies a record only when its
// sequence is above the last one it applied from that origin, so a message
// sent again, however its records were grouped, applies each record once.
// Its Nats-Msg-Id (MsgID) names the origin, partition and first and last
// sequence, so JetStream drops a message resent as it was.
package wire

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"math"
	"strconv"
	"time"

	"github.com/driftd/driftd/core/metric"
)

// HeaderOrigin names the instance that accepted a lines message's records.
const HeaderOrigin = "Driftd-Origin"

// MsgID is the Nats-Msg-Id of a lines message of partition p from origin
// holding the records of sequences first to last.
func MsgID(origin string, p int, first, last uint64) string {
	return origin + "." + strconv.Itoa(p) + "." + strconv.FormatUint(first, 10) + "-" + strconv.FormatUint(last, 10)
}

// Partition returns the partition of a model version: FNV-1a over
// model, a zero byte and version, modulo partitions. Every host computes
// the same one; changing partitions moves model versions, which is why it
// is fixed when the streams are created.
func Partition(model, version string, partitions int) int {
	h := fnv.New64a()
	h.Write([]byte(model))
	h.Write([]byte{0})
	h.Write([]byte(version))
	return int(h.Sum64() % uint64(partitions))
}

// LinesSubject is the subject partition p's lines travel on.
func LinesSubject(name string, p int) string { return name + ".lines." + strconv.Itoa(p) }

// LinesStream is the name of the stream of every partition's lines.
func LinesStream(name string) string { return name + "_lines" }

// AppendMetric appends the record of m to dst: model, version, the time in
// Unix nanoseconds (0 for none) and each value's name and IEEE 754 bits,
// strings and counts as uvarints.
func AppendMetric(dst []byte, m metric.Metric) []byte {
	dst = appendString(dst, m.Model)
	dst = appendString(dst, m.Version)
	var ns int64
	if !m.Time.IsZero() {
		ns = m.Time.UnixNano()
	}
	dst = binary.AppendVarint(dst, ns)
	dst = binary.AppendUvarint(dst, uint64(len(m.Values)))
	for _, v := range m.Values {
		dst = appendString(dst, v.Name)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.Value))
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// ErrCorrupt means a record does not decode.
var ErrCorrupt = errors.New("corrupt metric record")

// DecodeMetric decodes the record at the start of b and returns it with
// the bytes it took. names interns the strings; nil allocates each.
func DecodeMetric(b []byte, names func([]byte) string) (metric.Metric, int, error) {
	d := decoder{b: b, names: names}
	var m metric.Metric
	m.Model = d.str()
	m.Version = d.str()
	if ns := d.varint(); ns != 0 {
		m.Time = time.Unix(0, ns).UTC()
	}
	n := d.uvarint()
	if d.err != nil || n == 0 || n > uint64(len(d.b)) {
		return metric.Metric{}, 0, ErrCorrupt
	}
	m.Values = make([]metric.Value, n)
	for i := range m.Values {
		m.Values[i].Name = d.str()
		if len(d.b) < 8 {
			d.err = ErrCorrupt
			break
		}
		m.Values[i].Value = math.Float64frombits(binary.LittleEndian.Uint64(d.b))
		d.b = d.b[8:]
	}
	if d.err != nil {
		return metric.Metric{}, 0, d.err
	}
	return m, len(b) - len(d.b), nil
}

type decoder struct {
	b     []byte
	names func([]byte) string
	err   error
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = ErrCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = ErrCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = ErrCorrupt
		return ""
	}
	s := d.b[:n]
	d.b = d.b[n:]
	if d.names != nil {
		return d.names(s)
	}
	return string(s)
}

// AppendRecord appends a lines message's framing of one record: its spool
// sequence and its length as uvarints, then the record.
func AppendRecord(dst []byte, seq uint64, rec []byte) []byte {
	dst = binary.AppendUvarint(dst, seq)
	dst = binary.AppendUvarint(dst, uint64(len(rec)))
	return append(dst, rec...)
}

// Records calls fn with each record of a lines message body and its
// sequence, in order.
func Records(body []byte, fn func(seq uint64, rec []byte) error) error {
	for len(body) > 0 {
		seq, k := binary.Uvarint(body)
		if k <= 0 {
			return ErrCorrupt
		}
		body = body[k:]
		n, k := binary.Uvarint(body)
		if k <= 0 || n > uint64(len(body)-k) {
			return ErrCorrupt
		}
		if err := fn(seq, body[k:k+int(n)]); err != nil {
			return err
		}
		body = body[k+int(n):]
	}
	return nil
}
