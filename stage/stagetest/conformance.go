package stagetest

import "github.com/occystrap/occystrap/stage"

// Properties names the source in statistics.
func (s *Source) Properties() stage.SourceProperties {
	return stage.SourceProperties{Name: "stagetest"}
}
