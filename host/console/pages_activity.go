package console

// registerActivity declares the run, records, enrollment, attention and
// audit pages.
func (c *Console) registerActivity() {}
