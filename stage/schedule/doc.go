// Package schedule runs the images of a multi-image run: listed in order
// (as a resolver finds them), prepared ahead of their turn, run a few at a
// time (-J), with the results handed back in the order the images were
// listed.
//
// A Scheduler is made with New, which starts the lookahead's feeder on a
// pool the Scheduler owns; List hands it the images as they are found,
// Run runs them, and Close stops the feeder, waits for it and releases
// what was prepared for images that never ran. Every goroutine it starts
// is owned by a conc pool and waited for before Run or Close returns.
//
// Images run in the order they were listed: image i starts once fewer than
// Jobs are running. An image's preparation (Options.Prepare: for registry
// images, fetching the manifest, config and layers ahead) starts once
// fewer than Jobs+Ahead images are prepared and not yet finished, in list
// order, so the lookahead never holds more than that many images; an image
// whose turn comes before its preparation started runs without one.
//
// A task's result is its image's; a task error is fatal to the run: it
// cancels the other tasks, and Run returns the first such error, not the
// cancellation it caused. Images whose turn never came (the run was
// cancelled) get Task.NotRun's result.
//
// A Scheduler is used from one goroutine: New, List, Run, Close in that
// order. The callbacks it is given are called concurrently (Done is
// called one at a time).
package schedule
