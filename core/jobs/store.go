package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/driftd/driftd/sdk"
)

// fileName is the outbox's file in data_dir.
const fileName = "outbox.db"

// State is where a job's delivery stands.
type State string

// The states of a job in the outbox.
const (
	Pending   State = "pending"   // waiting for its next attempt
	Delivered State = "delivered" // the sink took it
	Failed    State = "failed"    // refused for good, or out of attempts or time; kept for inspection
	// Held is a job not yet written: the outbox could not be written
	// when it was queued. It is in memory only (see Outbox.hold).
	Held State = "held"
	// writing is a job on its way to the store (see persist.go). It is
	// in memory only, listed as pending, and not delivered until written.
	writing State = "writing"
)

// unwritten reports whether the job is not in the store yet: it is
// written whole, as it is then, by the persist stage.
func (s State) unwritten() bool { return s == Held || s == writing }

// jobRecord is a job in the outbox, with where its delivery stands.
type jobRecord struct {
	Job         sdk.Job   `json:"job"`
	State       State     `json:"state"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Updated     time.Time `json:"updated"`
	// Queued is when the job was queued: created, or queued again by a
	// retry. max_age counts from it.
	Queued time.Time `json:"queued,omitzero"`
	// Stream and RecoverAt track a retrain job's recovery: once Stream has
	// a value at RecoverAt (a full window after the last drift that led to
	// this job), the model version recovered. Open is true until then.
	Stream    string `json:"stream,omitempty"`
	RecoverAt uint64 `json:"recover_at,omitempty"`
	Open      bool   `json:"open,omitempty"`
}

// queued returns when r was queued; records written before Queued existed
// have their creation time.
func (r *jobRecord) queued() time.Time {
	if r.Queued.IsZero() {
		return r.Job.Created
	}
	return r.Queued
}

// cooldown is the last job queued for a model version and sink.
type cooldown struct {
	Queued time.Time `json:"queued"`
	Job    string    `json:"job"`
}

func cooldownKey(model, version, sink string) string {
	return model + "\x00" + version + "\x00" + sink
}

var (
	jobsBucket      = []byte("jobs")
	cooldownsBucket = []byte("cooldowns")
)

// store keeps the outbox in a bbolt file. Every write is one
// transaction, fsynced before it returns: a job counts as queued only once
// it is on disk.
type store struct {
	db *bolt.DB
	// beforeWrite, when set, is called before each write; an error it
	// returns fails the write (tests: a full disk, a slow one).
	beforeWrite func() error
}

func openStore(dir string) (*store, error) {
	path := filepath.Join(dir, fileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{jobsBucket, cooldownsBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	return &store{db: db}, nil
}

// load reads every job and cooldown. A record that does not decode is
// reported and skipped, so one bad entry does not stop the others.
func (s *store) load() (jobs []*jobRecord, cooldowns map[string]cooldown, bad []error, err error) {
	cooldowns = map[string]cooldown{}
	err = s.db.View(func(tx *bolt.Tx) error {
		if err := tx.Bucket(jobsBucket).ForEach(func(k, v []byte) error {
			var r jobRecord
			if err := json.Unmarshal(v, &r); err != nil {
				bad = append(bad, fmt.Errorf("job %q: %w", k, err))
				return nil
			}
			jobs = append(jobs, &r)
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(cooldownsBucket).ForEach(func(k, v []byte) error {
			var c cooldown
			if err := json.Unmarshal(v, &c); err != nil {
				bad = append(bad, fmt.Errorf("cooldown %q: %w", k, err))
				return nil
			}
			cooldowns[string(k)] = c
			return nil
		})
	})
	return jobs, cooldowns, bad, err
}

// write stores recs and cooldowns and deletes the jobs in drop, in one
// transaction.
func (s *store) write(recs []*jobRecord, cds map[string]cooldown, drop []string) error {
	if s.beforeWrite != nil {
		if err := s.beforeWrite(); err != nil {
			return err
		}
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		jb, cb := tx.Bucket(jobsBucket), tx.Bucket(cooldownsBucket)
		for _, r := range recs {
			v, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := jb.Put([]byte(r.Job.ID), v); err != nil {
				return err
			}
		}
		for k, c := range cds {
			v, err := json.Marshal(c)
			if err != nil {
				return err
			}
			if err := cb.Put([]byte(k), v); err != nil {
				return err
			}
		}
		for _, id := range drop {
			if err := jb.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

// dropCooldowns deletes cooldown entries.
func (s *store) dropCooldowns(keys []string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(cooldownsBucket)
		for _, k := range keys {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *store) close() error {
	if s == nil || s.db == nil {
		return errors.New("outbox not open")
	}
	return s.db.Close()
}
