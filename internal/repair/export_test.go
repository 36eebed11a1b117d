package repair

// WithoutProbe returns actions whose guard probes are dropped, for tests
// that reach what a transaction checks without a database to probe.
func WithoutProbe(actions []Action) []Action {
	out := make([]Action, len(actions))
	for i, a := range actions {
		a.write.probe = nil
		out[i] = a
	}
	return out
}
