package proto

// Detail is one of a signal's figures (a Signal's details entry): its
// name and value. The sdk's Signal.Pairs hold them; they travel as the
// entries of Signal.details.
type Detail struct {
	Key   string
	Value float64
}
