// Package gate keeps what an output's Sink and Close calls share: whether
// the output was closed and, for an output that takes one image (tar://,
// docker://), whether its sink was handed out already. The outputs keep
// their own sentinel errors; a Gate only says which one applies.
package gate
