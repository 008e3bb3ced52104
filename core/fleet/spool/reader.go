package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// A Reader returns a spool's synced records in order, from a sequence on.
// It reads segment files in large chunks and returns records in its own
// buffer, so reading allocates nothing once the buffer has grown to the
// largest record. A Reader is used by one goroutine at a time.
type Reader struct {
	s      *Spool
	skipTo uint64 // records below are passed over

	seq      uint64 // sequence of the record at buf[r:]
	segFirst uint64 // the open segment's first sequence; 0 before one is open
	f        *os.File
	fileOff  int64 // file offset of buf[w]
	buf      []byte
	r, w     int
}

// NewReader returns a Reader of the records from sequence from on (from
// the first record held when from is below it). Use Spool.Stats's
// FirstUnacked to resume where forwarding stopped.
func (s *Spool) NewReader(from uint64) *Reader {
	return &Reader{s: s, skipTo: from, buf: make([]byte, bufBytes)}
}

// Next returns the next synced record and its sequence, waiting for one
// until ctx ends. rec is valid until the next call. It returns ErrClosed
// once the spool is closed, and an error wrapping ErrCorrupt for a record
// that does not match its checksum.
func (r *Reader) Next(ctx context.Context) (seq uint64, rec []byte, err error) {
	for {
		if n := r.w - r.r; n >= headerLen {
			l := int(binary.LittleEndian.Uint32(r.buf[r.r:]))
			if n >= headerLen+l {
				rec = r.buf[r.r+headerLen : r.r+headerLen+l]
				if crc32.Checksum(rec, crcTable) != binary.LittleEndian.Uint32(r.buf[r.r+4:]) {
					return 0, nil, fmt.Errorf("%w: sequence %d in %s", ErrCorrupt, r.seq, segName(r.segFirst))
				}
				r.r += headerLen + l
				seq = r.seq
				r.seq++
				if seq < r.skipTo {
					continue
				}
				return seq, rec, nil
			}
			if headerLen+l > len(r.buf) {
				r.buf = append(r.buf, make([]byte, headerLen+l-len(r.buf))...)
			}
		}
		if err := r.fill(ctx); err != nil {
			return 0, nil, err
		}
	}
}

// fill reads more synced bytes into the buffer, moving to the next segment
// when the open one is read to its end, and waits when there are none.
func (r *Reader) fill(ctx context.Context) error {
	for {
		s := r.s
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if r.segFirst == 0 || r.segFirst < s.segs[0].first {
			// Start, or the segment read was acked away: the first held.
			if r.segFirst != 0 && r.seq < s.ack {
				r.skipTo = max(r.skipTo, s.ack)
			}
			i := 0
			for i+1 < len(s.segs) && s.segs[i+1].first <= r.skipTo {
				i++
			}
			first := s.segs[i].first
			s.mu.Unlock()
			if err := r.open(first); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			continue
		}
		var limit int64
		var nextSeg uint64
		switch {
		case r.segFirst < s.syncSeg:
			// Closed and synced: read to its end, then the next one.
			for i, seg := range s.segs {
				if seg.first == r.segFirst {
					limit = seg.size
					nextSeg = s.segs[i+1].first
					break
				}
			}
		case r.segFirst == s.syncSeg:
			limit = s.syncOff
		}
		// (A segment after the synced point's has nothing synced yet.)
		ch := s.syncCh
		s.mu.Unlock()
		if r.fileOff < limit {
			if r.r > 0 {
				r.w = copy(r.buf, r.buf[r.r:r.w])
				r.r = 0
			}
			n, err := r.f.ReadAt(r.buf[r.w:min(len(r.buf), r.w+int(limit-r.fileOff))], r.fileOff)
			r.w += n
			r.fileOff += int64(n)
			if n > 0 {
				return nil
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("spool: read: %w", err)
			}
			return fmt.Errorf("%w: %s ends before its %d bytes", ErrCorrupt, segName(r.segFirst), limit)
		}
		if nextSeg != 0 {
			if r.r != r.w {
				return fmt.Errorf("%w: %s ends inside a record", ErrCorrupt, segName(r.segFirst))
			}
			if err := r.open(nextSeg); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *Reader) open(first uint64) error {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	f, err := os.Open(filepath.Join(r.s.dir, segName(first)))
	if err != nil {
		return fmt.Errorf("spool: read: %w", err)
	}
	r.f, r.segFirst, r.seq, r.fileOff, r.r, r.w = f, first, first, 0, 0, 0
	return nil
}

// Close closes the Reader's file.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
