package spool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func open(t *testing.T, dir string, opts Options) *Spool {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func record(seq uint64) []byte { return []byte("record " + strconv.FormatUint(seq, 10)) }

func appendN(t *testing.T, s *Spool, n int) (first, last uint64) {
	t.Helper()
	for i := range n {
		seq, err := s.Append([]byte(fmt.Sprintf("r%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = seq
		}
		last = seq
	}
	return first, last
}

// readAll reads the records from sequence from up to and including last.
func readAll(t *testing.T, s *Spool, from, last uint64) map[uint64]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := s.NewReader(from)
	defer r.Close()
	got := map[uint64]string{}
	want := from
	for want <= last {
		seq, rec, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("read up to %d: at %d: %v", last, want, err)
		}
		if seq < want {
			t.Fatalf("read %d after %d: out of order", seq, want-1)
		}
		got[seq] = string(rec)
		want = seq + 1
	}
	return got
}

func TestRoundTripAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{SegmentBytes: 200})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 50 {
		rec := fmt.Sprintf("rec-%d", i)
		seq, err := s.Append([]byte(rec))
		if err != nil {
			t.Fatal(err)
		}
		if seq != uint64(i+1) {
			t.Fatalf("seq %d, want %d", seq, i+1)
		}
		want = append(want, rec)
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, Options{SegmentBytes: 200})
	if st := s.Stats(); st.LastSeq != 50 || st.FirstUnacked != 1 || st.Records != 50 || st.Segments < 3 {
		t.Fatalf("stats after reopen %+v, want 50 records in several segments", st)
	}
	got := readAll(t, s, 1, 50)
	for i, rec := range want {
		if got[uint64(i+1)] != rec {
			t.Fatalf("record %d = %q, want %q", i+1, got[uint64(i+1)], rec)
		}
	}
	if seq, err := s.Append([]byte("after")); err != nil || seq != 51 {
		t.Fatalf("append after reopen: %d, %v; want 51", seq, err)
	}
}

func TestReaderSeesSyncedRecordsOnly(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	appendN(t, s, 3)
	r := s.NewReader(1)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if seq, _, err := r.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read %d, %v before any sync; want to wait", seq, err)
	}
	done := make(chan uint64)
	go func() {
		seq, _, err := r.Next(context.Background())
		if err != nil {
			t.Error(err)
		}
		done <- seq
	}()
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if seq := <-done; seq != 1 {
		t.Fatalf("first read %d, want 1", seq)
	}
}

func TestTornTail(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, seg string)
		kept   uint64
	}{
		{"cut mid-record", func(t *testing.T, seg string) {
			fi, _ := os.Stat(seg)
			if err := os.Truncate(seg, fi.Size()-3); err != nil {
				t.Fatal(err)
			}
		}, 9},
		{"garbage appended", func(t *testing.T, seg string) {
			f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte{5, 0, 0, 0, 1, 2, 3, 4, 'g', 'a', 'r', 'b', 'a'})
			f.Close()
		}, 10},
		{"last record's bytes flipped", func(t *testing.T, seg string) {
			b, _ := os.ReadFile(seg)
			b[len(b)-1] ^= 0xff
			os.WriteFile(seg, b, 0o644)
		}, 9},
		{"a huge length", func(t *testing.T, seg string) {
			f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0})
			f.Close()
		}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i := uint64(1); i <= 10; i++ {
				s.Append(record(i))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, filepath.Join(dir, segName(1)))
			s = open(t, dir, Options{})
			if st := s.Stats(); st.LastSeq != tt.kept {
				t.Fatalf("last seq %d after damage, want %d", st.LastSeq, tt.kept)
			}
			seq, err := s.Append(record(tt.kept + 1))
			if err != nil || seq != tt.kept+1 {
				t.Fatalf("append after damage: %d, %v; want %d", seq, err, tt.kept+1)
			}
			if err := s.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := readAll(t, s, 1, tt.kept+1)
			for i := uint64(1); i <= tt.kept+1; i++ {
				if got[i] != string(record(i)) {
					t.Fatalf("record %d = %q, want %q", i, got[i], record(i))
				}
			}
		})
	}
}

func TestFullThenAckFreesRoom(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{MaxBytes: 4000, SegmentBytes: 500})
	var last uint64
	var err error
	for i := range 1000 {
		seq, aerr := s.Append(make([]byte, 92))
		if aerr != nil {
			if i == 0 {
				t.Fatal(aerr)
			}
			err = aerr
			break
		}
		last = seq
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("appending past MaxBytes: %v, want ErrFull", err)
	}
	if !strings.Contains(err.Error(), "of 4000") {
		t.Fatalf("error %q does not name the limit", err)
	}
	if st := s.Stats(); st.Bytes > 4000 || st.Bytes < 3800 {
		t.Fatalf("holds %d bytes at full, want just under 4000", st.Bytes)
	}
	// Only synced records can be acked.
	if err := s.Ack(last + 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(make([]byte, 92)); !errors.Is(err, ErrFull) {
		t.Fatalf("append after acking unsynced records: %v, want ErrFull still", err)
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(last + 1); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Bytes != 0 || st.Segments != 1 || st.Records != 0 || st.FirstUnacked != last+1 {
		t.Fatalf("stats after acking everything %+v", st)
	}
	seq, err := s.Append(make([]byte, 92))
	if err != nil || seq != last+1 {
		t.Fatalf("append after ack: %d, %v; want %d", seq, err, last+1)
	}
}

func TestSegmentsRollAndAckDeletes(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{SegmentBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 40; i++ {
		s.Append(record(i)) // 8 + 8 or 9 bytes: 5 or 6 per segment
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	segs := func() []uint64 {
		f, err := listSegments(dir)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	before := segs()
	if len(before) < 6 || before[0] != 1 {
		t.Fatalf("segments %v, want several from 1", before)
	}
	// Acking into the third segment deletes the first two only.
	upTo := before[2] + 1
	if err := s.Ack(upTo); err != nil {
		t.Fatal(err)
	}
	after := segs()
	if after[0] != before[2] || len(after) != len(before)-2 {
		t.Fatalf("segments after Ack(%d): %v, were %v", upTo, after, before)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened, reading resumes at the ack point.
	s = open(t, dir, Options{SegmentBytes: 100})
	if st := s.Stats(); st.FirstUnacked != upTo || st.LastSeq != 40 {
		t.Fatalf("stats after reopen %+v, want ack point %d and last 40", st, upTo)
	}
	r := s.NewReader(s.Stats().FirstUnacked)
	defer r.Close()
	seq, rec, err := r.Next(context.Background())
	if err != nil || seq != upTo || string(rec) != string(record(upTo)) {
		t.Fatalf("first read after reopen: %d %q %v, want %d", seq, rec, err, upTo)
	}
	// Everything acked: only an empty segment stays, and sequences go on.
	if err := s.Ack(41); err != nil {
		t.Fatal(err)
	}
	if got := segs(); len(got) != 1 || got[0] != 41 {
		t.Fatalf("segments after acking all: %v, want [41]", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, Options{SegmentBytes: 100})
	if seq, err := s.Append(record(41)); err != nil || seq != 41 {
		t.Fatalf("append after acking all and reopening: %d, %v; want 41", seq, err)
	}
}

// TestSyncConcurrent has many goroutines append and sync at once: each
// record a Sync covered can be read, and fsyncs are shared.
func TestSyncConcurrent(t *testing.T) {
	s := open(t, t.TempDir(), Options{SegmentBytes: 4096})
	const writers, each = 16, 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	synced := map[uint64]string{}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				rec := fmt.Sprintf("w%d-%d", w, i)
				seq, err := s.Append([]byte(rec))
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.Sync(context.Background()); err != nil {
					t.Error(err)
					return
				}
				if st := s.Stats(); st.Synced <= seq {
					t.Errorf("Sync returned with synced point %d at or below %d", st.Synced, seq)
				}
				mu.Lock()
				synced[seq] = rec
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	got := readAll(t, s, 1, writers*each)
	if len(got) != writers*each {
		t.Fatalf("read %d records, want %d", len(got), writers*each)
	}
	for seq, rec := range synced {
		if got[seq] != rec {
			t.Fatalf("record %d = %q, want %q", seq, got[seq], rec)
		}
	}
}

func TestSyncHonoursContext(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	s.Append([]byte("x"))
	s.mu.Lock()
	s.syncing = true // an fsync that never ends
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Sync(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sync during a stuck fsync: %v, want the context's error", err)
	}
	s.mu.Lock()
	s.syncing = false
	s.mu.Unlock()
}

// TestKill9 runs a child process that appends and syncs in a loop and
// prints each sequence a Sync covered, kills it with SIGKILL, and reopens
// its spool: every record it printed is there, intact.
func TestKill9(t *testing.T) {
	if dir := os.Getenv("SPOOL_KILL9_DIR"); dir != "" {
		kill9Child(dir)
		return
	}
	if testing.Short() {
		t.Skip("runs a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
	cmd.Env = append(os.Environ(), "SPOOL_KILL9_DIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the test
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Every line the child printed is a Sync that returned; the kill
	// comes while it goes on appending.
	var acked atomic.Uint64
	drained := make(chan error)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				drained <- fmt.Errorf("child printed %q", sc.Text())
				return
			}
			acked.Store(n)
		}
		drained <- sc.Err()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for acked.Load() < 20000 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the child acknowledged %d records in 30s", acked.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	last := acked.Load()
	s := open(t, dir, Options{SegmentBytes: 64 << 10})
	if st := s.Stats(); st.LastSeq < last {
		t.Fatalf("last seq %d after kill -9, below the acknowledged %d", st.LastSeq, last)
	}
	got := readAll(t, s, 1, last)
	for seq := uint64(1); seq <= last; seq++ {
		if got[seq] != string(record(seq)) {
			t.Fatalf("record %d = %q, want %q", seq, got[seq], record(seq))
		}
	}
	t.Logf("%d records acknowledged before the kill, %d kept", last, s.Stats().LastSeq)
}

func kill9Child(dir string) {
	s, err := Open(dir, Options{SegmentBytes: 64 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for {
		var last uint64
		for range 37 {
			last, err = s.Append(record(s.Stats().LastSeq + 1))
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
		}
		if err := s.Sync(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(last)
	}
}

// TestReadAckWhileAppending has writers append and sync while a reader
// reads each record once, in order, and acks behind itself, across many
// segment rollovers: nothing is skipped, and acked segments go.
func TestReadAckWhileAppending(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{SegmentBytes: 512, MaxBytes: 1 << 20})
	const writers, each = 4, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := s.Append([]byte(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					t.Error(err)
					return
				}
				if i%7 == 0 {
					if err := s.Sync(context.Background()); err != nil {
						t.Error(err)
						return
					}
				}
			}
			if err := s.Sync(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := s.NewReader(1)
	defer r.Close()
	next := map[string]int{} // per writer, the next index expected
	for want := uint64(1); want <= writers*each; want++ {
		seq, rec, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("reading %d: %v", want, err)
		}
		if seq != want {
			t.Fatalf("read %d, want %d", seq, want)
		}
		w, i, _ := strings.Cut(string(rec), "-")
		n, _ := strconv.Atoi(i)
		if n != next[w] {
			t.Fatalf("record %d is %q, want index %d of %s", seq, rec, next[w], w)
		}
		next[w]++
		if seq%5 == 0 {
			if err := s.Ack(seq + 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	if err := s.Ack(writers*each + 1); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Segments != 1 || st.Bytes != 0 || st.FirstUnacked != writers*each+1 {
		t.Fatalf("stats after reading and acking all: %+v", st)
	}
	if segs, _ := listSegments(dir); len(segs) != 1 {
		t.Fatalf("segment files %v after acking all, want one", segs)
	}
}

func TestCloseKeepsUnsyncedRecords(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 5; i++ {
		s.Append(record(i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(record(6)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after Close: %v, want ErrClosed", err)
	}
	s = open(t, dir, Options{})
	got := readAll(t, s, 1, 5)
	for i := uint64(1); i <= 5; i++ {
		if got[i] != string(record(i)) {
			t.Fatalf("record %d = %q after Close and Open, want %q", i, got[i], record(i))
		}
	}
}

func TestOpenDeletesAckedSegmentsLeftBehind(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{SegmentBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 40; i++ {
		s.Append(record(i))
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, _ := listSegments(dir)
	// The ack point written, then a crash before the segments went.
	s.ackMu.Lock()
	err = s.writeAck(before[3])
	s.ackMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, Options{SegmentBytes: 100})
	after, _ := listSegments(dir)
	if !slices.Equal(after, before[3:]) {
		t.Fatalf("segments after Open %v, want %v", after, before[3:])
	}
	if st := s.Stats(); st.FirstUnacked != before[3] || st.LastSeq != 40 {
		t.Fatalf("stats %+v, want ack point %d and last 40", st, before[3])
	}
}
