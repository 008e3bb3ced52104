package wire

import "strconv"

// A retirement travels in the lines stream, on the subject of each
// partition it concerns, as a message whose HeaderKind is KindRetire and
// whose body is a Retire in JSON. It takes its place in the partition's
// order: the owner retires the model versions it names after applying
// every line before it, and a new owner replaying the partition from a
// checkpoint retires them at the same point. The owner answers on the
// message's HeaderReply subject, when it has one, with a RetireAnswer.

// HeaderKind marks a lines message that is not records: KindRetire.
const HeaderKind = "Driftd-Kind"

// KindRetire is HeaderKind's value of a retirement.
const KindRetire = "retire"

// HeaderReply names the subject a retirement's answer goes to.
const HeaderReply = "Driftd-Reply"

// Retire asks a partition's owner to retire the model versions of the
// partition that match Model and Version, path.Match globs (Version ""
// for every version).
type Retire struct {
	ID      string `json:"id"` // unique to the request
	Model   string `json:"model"`
	Version string `json:"version,omitempty"`
}

// RetireMsgID is the Nats-Msg-Id of retirement id's message to partition
// p.
func RetireMsgID(id string, p int) string { return "retire-" + id + "-" + strconv.Itoa(p) }

// RetireAnswer is what a partition's owner retired.
type RetireAnswer struct {
	Partition int       `json:"partition"`
	Instance  string    `json:"instance"`
	Retired   []Retired `json:"retired"`
}

// Retired is a model version retired, with the metrics of its streams.
type Retired struct {
	Model   string   `json:"model"`
	Version string   `json:"version"`
	Metrics []string `json:"metrics"`
}
