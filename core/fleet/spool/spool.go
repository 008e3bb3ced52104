// Package spool is a host's durable buffer of accepted metric records on
// their way to the fleet: an ordered, bounded log on local disk.
//
// Records are numbered by a sequence that only grows, across restarts too.
// They live in segment files named by the sequence of their first record
// (00000000000000000001.seg), each record framed by its length and its
// CRC-32C. Append buffers; Sync makes everything appended before it durable
// (one fsync shared by every caller waiting at the time); a Reader returns
// synced records only, in order, and waits for more; Ack drops what was
// forwarded, whole segments at a time, and records the point reading
// resumes from after a restart. Open truncates a torn or corrupt tail (a
// process killed mid-write) and keeps every record before it.
package spool

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// ErrFull means an Append would make the spool hold more than MaxBytes.
// The records already held stay; Ack frees room.
var ErrFull = errors.New("spool full")

// ErrClosed means the spool was closed.
var ErrClosed = errors.New("spool closed")

// ErrCorrupt means a synced record does not match its checksum.
var ErrCorrupt = errors.New("corrupt spool record")

const (
	// DefaultSegmentBytes is the size at which a segment file is closed
	// and the next begun.
	DefaultSegmentBytes = 64 << 20
	// MaxRecordBytes is the largest record Append takes.
	MaxRecordBytes = 16 << 20

	headerLen = 8 // length, CRC-32C: uint32 little endian each
	segSuffix = ".seg"
	ackName   = "ack"
	bufBytes  = 256 << 10
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Options are a spool's limits and logger.
type Options struct {
	// MaxBytes bounds the bytes the spool's segment files hold; 0 for no
	// bound. A segment is freed once every record in it is acked, so the
	// held bytes count the whole segment holding the first unacked record.
	MaxBytes int64
	// SegmentBytes is the size of a segment file (DefaultSegmentBytes when
	// 0). When MaxBytes is set, at most a quarter of it, so that acks free
	// room well before the bound.
	SegmentBytes int64
	Log          hclog.Logger
	// Synced, when set, is told how long each round of fsyncs took.
	Synced func(time.Duration)
}

// Stats are what a spool holds.
type Stats struct {
	Bytes        int64  // bytes in segment files, including appended but not yet synced
	Records      uint64 // records from the first unacked one to the last appended
	FirstUnacked uint64 // the ack point: the sequence of the first record not acked
	LastSeq      uint64 // the sequence of the last record appended; 0 for none ever
	Synced       uint64 // every record below this sequence is on disk
	Segments     int
	Syncs        uint64 // fsync rounds since Open, each covering every caller waiting
}

type segment struct {
	first uint64 // sequence of its first record
	size  int64  // bytes written to it, buffered ones included
}

// A Spool is a durable log of records. Its methods are safe for
// concurrent use.
type Spool struct {
	dir  string
	opts Options
	log  hclog.Logger

	mu       sync.Mutex // guards all below
	segs     []segment  // oldest first; the last is the active one
	active   *os.File
	w        *bufio.Writer // over active
	next     uint64        // the sequence the next Append takes
	ack      uint64        // every record below was acked
	held     int64         // sum of segs' sizes
	toSync   []*os.File    // segments closed for writing, not yet fsynced
	dirDirty bool          // a segment file was made since the directory's last fsync
	syncing  bool          // an fsync runs (outside mu)
	synced   uint64        // every record below is on disk
	syncSeg  uint64        // first of the segment the synced point is in
	syncOff  int64         // and its offset there
	syncCh   chan struct{} // closed and replaced when a sync ends or the spool closes
	closed   bool
	syncs    uint64
	frame    [headerLen]byte

	ackMu        sync.Mutex // one ack file write at a time; taken before mu
	ackPersisted uint64
}

// Open opens the spool in dir, making dir when missing. A torn or corrupt
// tail of a segment is truncated away and logged.
func Open(dir string, opts Options) (*Spool, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.MaxBytes > 0 && opts.SegmentBytes > opts.MaxBytes/4 {
		opts.SegmentBytes = max(opts.MaxBytes/4, 1)
	}
	if opts.Log == nil {
		opts.Log = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	s := &Spool{dir: dir, opts: opts, log: opts.Log, syncCh: make(chan struct{})}
	ack, err := readAck(filepath.Join(dir, ackName))
	if err != nil {
		return nil, err
	}
	firsts, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	s.next = max(ack, 1)
	var lastEnd uint64
	for i, first := range firsts {
		n, size, err := s.scan(first, i == len(firsts)-1)
		if err != nil {
			return nil, err
		}
		s.segs = append(s.segs, segment{first: first, size: size})
		s.held += size
		if i+1 < len(firsts) && first+n > firsts[i+1] {
			return nil, fmt.Errorf("open spool: segment %s overlaps the next", segName(first))
		}
		lastEnd = first + n
		s.next = max(s.next, lastEnd)
	}
	s.ack = max(ack, 1)
	if len(s.segs) > 0 {
		s.ack = max(s.ack, s.segs[0].first)
	}
	s.ack = min(s.ack, s.next)
	s.ackPersisted = ack
	// Segments all below the ack point whose deletion a crash cut short.
	for len(s.segs) > 1 && s.segs[1].first <= s.ack {
		if err := os.Remove(filepath.Join(dir, segName(s.segs[0].first))); err != nil {
			return nil, fmt.Errorf("open spool: delete acked segment: %w", err)
		}
		s.held -= s.segs[0].size
		s.segs = s.segs[1:]
	}
	// A record's sequence is its segment's first plus its index there, so
	// appending goes on in the last segment only when it ends at next.
	if len(s.segs) > 0 && lastEnd == s.next {
		last := s.segs[len(s.segs)-1]
		f, err := os.OpenFile(filepath.Join(dir, segName(last.first)), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, fmt.Errorf("open spool: %w", err)
		}
		s.active = f
	}
	if s.active == nil {
		if err := s.newSegmentLocked(); err != nil {
			return nil, err
		}
		if err := syncDir(dir); err != nil {
			return nil, err
		}
		s.dirDirty = false
	}
	s.w = bufio.NewWriterSize(s.active, bufBytes)
	s.synced = s.next
	last := s.segs[len(s.segs)-1]
	s.syncSeg, s.syncOff = last.first, last.size
	return s, nil
}

// scan reads a segment's records, checking each, and truncates the file
// at the first that is torn or corrupt. It returns the records and bytes
// kept.
func (s *Spool) scan(first uint64, last bool) (uint64, int64, error) {
	name := filepath.Join(s.dir, segName(first))
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("open spool: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("open spool: %w", err)
	}
	r := bufio.NewReaderSize(f, bufBytes)
	var (
		n   uint64
		off int64
		hdr [headerLen]byte
		rec []byte
	)
	for off < fi.Size() {
		if _, err := readFull(r, hdr[:]); err != nil {
			break
		}
		l := binary.LittleEndian.Uint32(hdr[:4])
		if int64(l) > fi.Size()-off-headerLen || l > MaxRecordBytes {
			break
		}
		rec = slices.Grow(rec[:0], int(l))[:l]
		if _, err := readFull(r, rec); err != nil {
			break
		}
		if crc32.Checksum(rec, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			break
		}
		n++
		off += headerLen + int64(l)
	}
	if off < fi.Size() {
		if err := f.Truncate(off); err != nil {
			return 0, 0, fmt.Errorf("open spool: truncate torn tail of %s: %w", name, err)
		}
		if err := f.Sync(); err != nil {
			return 0, 0, fmt.Errorf("open spool: %w", err)
		}
		where := "torn tail"
		if !last {
			where = "corrupt tail of a closed segment"
		}
		s.log.Warn("spool: truncated a "+where, "segment", name, "records_kept", n, "offset", off, "bytes_dropped", fi.Size()-off)
	}
	return n, off, nil
}

func readFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func segName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }

func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	var firsts []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok || e.IsDir() {
			continue
		}
		first, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		firsts = append(firsts, first)
	}
	slices.Sort(firsts)
	return firsts, nil
}

// newSegmentLocked begins a segment at s.next and makes it the active one.
func (s *Spool) newSegmentLocked() error {
	f, err := os.OpenFile(filepath.Join(s.dir, segName(s.next)), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("spool: new segment: %w", err)
	}
	s.active = f
	s.segs = append(s.segs, segment{first: s.next})
	s.dirDirty = true
	return nil
}

// Append adds a record and returns its sequence. The record is buffered:
// it is durable, and readable, once a Sync begun after Append returns
// has returned. An error wrapping ErrFull means the spool holds its
// MaxBytes.
func (s *Spool) Append(rec []byte) (uint64, error) {
	if len(rec) > MaxRecordBytes {
		return 0, fmt.Errorf("spool: record of %d bytes is over the limit of %d", len(rec), MaxRecordBytes)
	}
	n := int64(headerLen + len(rec))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	if s.opts.MaxBytes > 0 && s.held+n > s.opts.MaxBytes {
		return 0, fmt.Errorf("%w: holds %d bytes of %d (%d records not forwarded)", ErrFull, s.held, s.opts.MaxBytes, s.next-s.ack)
	}
	seg := &s.segs[len(s.segs)-1]
	if seg.size > 0 && seg.size+n > s.opts.SegmentBytes {
		if err := s.rollLocked(); err != nil {
			return 0, err
		}
		seg = &s.segs[len(s.segs)-1]
	}
	binary.LittleEndian.PutUint32(s.frame[:4], uint32(len(rec)))
	binary.LittleEndian.PutUint32(s.frame[4:], crc32.Checksum(rec, crcTable))
	if _, err := s.w.Write(s.frame[:]); err != nil {
		return 0, fmt.Errorf("spool: append: %w", err)
	}
	if _, err := s.w.Write(rec); err != nil {
		return 0, fmt.Errorf("spool: append: %w", err)
	}
	seg.size += n
	s.held += n
	seq := s.next
	s.next++
	return seq, nil
}

// rollLocked closes the active segment for writing (the next Sync fsyncs
// it) and begins the next.
func (s *Spool) rollLocked() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("spool: append: %w", err)
	}
	s.toSync = append(s.toSync, s.active)
	if err := s.newSegmentLocked(); err != nil {
		return err
	}
	s.w.Reset(s.active)
	return nil
}

// Sync returns nil once every record appended before the call is on disk.
// Callers at the same time share fsyncs: one runs, and whoever arrives
// meanwhile waits for the next, which covers them all.
func (s *Spool) Sync(ctx context.Context) error {
	s.mu.Lock()
	target := s.next
	for {
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if s.synced >= target {
			s.mu.Unlock()
			return nil
		}
		if !s.syncing {
			err := s.syncLocked()
			if err != nil {
				s.mu.Unlock()
				return err
			}
			continue
		}
		ch := s.syncCh
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
}

// syncLocked flushes the buffer and fsyncs, releasing mu during the
// fsyncs, and wakes everyone waiting for a sync.
func (s *Spool) syncLocked() error {
	s.syncing = true
	err := s.w.Flush()
	end := s.next
	last := s.segs[len(s.segs)-1]
	files := append(s.toSync, s.active)
	s.toSync = nil
	dirDirty := s.dirDirty
	s.dirDirty = false
	s.mu.Unlock()
	start := time.Now()
	done := 0
	if err == nil {
		for _, f := range files {
			if err = f.Sync(); err != nil {
				break
			}
			done++
		}
	}
	if err == nil && dirDirty {
		err = syncDir(s.dir)
	}
	if err == nil && s.opts.Synced != nil {
		s.opts.Synced(time.Since(start))
	}
	// Closed segments that are on disk are closed for good.
	for _, f := range files[:min(done, len(files)-1)] {
		f.Close()
	}
	s.mu.Lock()
	s.syncing = false
	if err == nil {
		s.synced, s.syncSeg, s.syncOff = end, last.first, last.size
		s.syncs++
	} else {
		// Kept for the next attempt.
		keep := slices.Clone(files[min(done, len(files)-1) : len(files)-1])
		s.toSync = append(keep, s.toSync...)
		s.dirDirty = s.dirDirty || dirDirty
	}
	close(s.syncCh)
	s.syncCh = make(chan struct{})
	if err != nil {
		return fmt.Errorf("spool: sync: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: sync directory: %w", err)
	}
	return nil
}

// Ack records that every record below upTo was forwarded. Segments whose
// records are all below it are deleted; a fully acked active segment is
// closed and deleted, the next one begun. The ack point is written to the
// ack file (atomically) before any segment is deleted, and is where a
// Reader of a reopened spool starts; records at and above it may be read
// again. Only synced records can be acked: upTo is capped at the synced
// point.
func (s *Spool) Ack(upTo uint64) error {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.ack = max(s.ack, min(upTo, s.synced))
	upTo = s.ack
	// The active segment, once all acked, is replaced by an empty one so
	// that it can go too. Everything in it is synced (s.synced == s.next,
	// so no fsync runs now); the next Sync closes its file.
	if last := s.segs[len(s.segs)-1]; upTo >= s.next && last.size > 0 {
		if err := s.rollLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
		s.syncSeg, s.syncOff = s.next, 0
	}
	var drop []segment
	for len(s.segs) > 1 && s.segs[1].first <= upTo {
		drop = append(drop, s.segs[0])
		s.held -= s.segs[0].size
		s.segs = s.segs[1:]
	}
	s.mu.Unlock()
	if len(drop) == 0 {
		return nil
	}
	if err := s.writeAck(upTo); err != nil {
		return err
	}
	for _, seg := range drop {
		if err := os.Remove(filepath.Join(s.dir, segName(seg.first))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("spool: delete acked segment: %w", err)
		}
	}
	return nil
}

// writeAck writes the ack point to the ack file: a temporary file, fsynced
// and renamed over it. ackMu is held.
func (s *Spool) writeAck(upTo uint64) error {
	if upTo <= s.ackPersisted {
		return nil
	}
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], upTo)
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b[:8], crcTable))
	tmp := filepath.Join(s.dir, ackName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("spool: write ack point: %w", err)
	}
	_, err = f.Write(b[:])
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, ackName))
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		return fmt.Errorf("spool: write ack point: %w", err)
	}
	s.ackPersisted = upTo
	return nil
}

func readAck(name string) (uint64, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("open spool: %w", err)
	}
	if len(b) != 12 || crc32.Checksum(b[:8], crcTable) != binary.LittleEndian.Uint32(b[8:]) {
		// Written by rename, so never torn; a damaged one costs a re-read
		// of what its segments still hold.
		return 0, nil
	}
	return binary.LittleEndian.Uint64(b[:8]), nil
}

// Stats returns what the spool holds.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Bytes:        s.held,
		Records:      s.next - s.ack,
		FirstUnacked: s.ack,
		LastSeq:      s.next - 1,
		Synced:       s.synced,
		Segments:     len(s.segs),
		Syncs:        s.syncs,
	}
}

// Close flushes and fsyncs what was appended, writes the ack point and
// closes the files. Readers return ErrClosed.
func (s *Spool) Close() error {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true // no Append from here on
	for s.syncing {
		ch := s.syncCh
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	var err error
	if s.synced < s.next || len(s.toSync) > 0 || s.dirDirty {
		err = s.syncLocked()
	}
	ack := s.ack
	close(s.syncCh)
	s.active.Close()
	for _, f := range s.toSync {
		f.Close()
	}
	s.mu.Unlock()
	if werr := s.writeAck(ack); err == nil {
		err = werr
	}
	return err
}
