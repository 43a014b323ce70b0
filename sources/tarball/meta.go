package tarball

// Config is the image config as stored in the archive (for info and check).
func (s *Source) Config() []byte { return s.config }
