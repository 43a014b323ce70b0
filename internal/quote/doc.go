// Package quote makes untrusted names and text safe to print to a
// terminal: a file name from a layer or a label from an image config may
// hold escape sequences that repaint the screen, or a newline that forges a
// line of output a script reads.
//
// Name escapes, as `ls -b` does, every byte or character that is not plain
// printable text: C0 controls (tab and newline included) and DEL as \t, \n,
// \r or \xHH; C1 controls and Unicode bidirectional controls as \uHHHH;
// bytes that are not UTF-8 as \xHH; and the backslash itself as \\, so the
// output is unambiguous. Text does the same for free text (config values,
// history), but leaves tabs and backslashes alone. Both return their input
// unchanged when nothing needs escaping, which is the usual case, so
// ordinary output stays byte for byte the original occystrap's.
//
// The functions are pure and safe for concurrent use.
package quote
