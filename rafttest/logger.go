package rafttest

import (
	"fmt"
	"strings"

	"github.com/raftkit/raft"
)

// levelNames are the log levels in increasing severity; RedirectLogger.Lvl
// indexes into it. The last one, NONE, silences all output.
var levelNames = [...]string{"DEBUG", "INFO", "WARN", "ERROR", "FATAL", "NONE"}

// The numeric levels. PANIC messages are printed at levelFatal.
const (
	levelDebug = iota
	levelInfo
	levelWarn
	levelError
	levelFatal
	levelNone
)

// RedirectLogger is a raft.Logger that writes into a strings.Builder, so
// that the nodes' log lines become part of a directive's output. Each line
// starts with its level name. Messages below Lvl are discarded, and at the
// NONE level the logger discards everything written to it, log line or not.
type RedirectLogger struct {
	*strings.Builder
	Lvl int // 0 = DEBUG, 1 = INFO, 2 = WARNING, 3 = ERROR, 4 = FATAL, 5 = NONE
}

var _ raft.Logger = (*RedirectLogger)(nil)

// logLine writes one line at the given level, unless the level is filtered.
func (l *RedirectLogger) logLine(lvl int, msg string) {
	if lvl < l.Lvl {
		return
	}
	l.WriteString(levelNames[lvl] + " " + msg)
	if !strings.HasSuffix(msg, "\n") {
		l.WriteByte('\n')
	}
}

// Debug logs at DEBUG level.
func (l *RedirectLogger) Debug(v ...interface{}) { l.logLine(levelDebug, fmt.Sprint(v...)) }

// Debugf logs at DEBUG level.
func (l *RedirectLogger) Debugf(format string, v ...interface{}) {
	l.logLine(levelDebug, fmt.Sprintf(format, v...))
}

// Info logs at INFO level.
func (l *RedirectLogger) Info(v ...interface{}) { l.logLine(levelInfo, fmt.Sprint(v...)) }

// Infof logs at INFO level.
func (l *RedirectLogger) Infof(format string, v ...interface{}) {
	l.logLine(levelInfo, fmt.Sprintf(format, v...))
}

// Warning logs at WARN level.
func (l *RedirectLogger) Warning(v ...interface{}) { l.logLine(levelWarn, fmt.Sprint(v...)) }

// Warningf logs at WARN level.
func (l *RedirectLogger) Warningf(format string, v ...interface{}) {
	l.logLine(levelWarn, fmt.Sprintf(format, v...))
}

// Error logs at ERROR level.
func (l *RedirectLogger) Error(v ...interface{}) { l.logLine(levelError, fmt.Sprint(v...)) }

// Errorf logs at ERROR level.
func (l *RedirectLogger) Errorf(format string, v ...interface{}) {
	l.logLine(levelError, fmt.Sprintf(format, v...))
}

// Fatal logs at FATAL level, then panics with the message.
func (l *RedirectLogger) Fatal(v ...interface{}) {
	msg := fmt.Sprint(v...)
	l.logLine(levelFatal, msg)
	panic(msg)
}

// Fatalf logs at FATAL level, then panics with the message.
func (l *RedirectLogger) Fatalf(format string, v ...interface{}) {
	msg := fmt.Sprintf(format, v...)
	l.logLine(levelFatal, msg)
	panic(msg)
}

// Panic logs at FATAL level, then panics with the message.
func (l *RedirectLogger) Panic(v ...interface{}) {
	msg := fmt.Sprint(v...)
	l.logLine(levelFatal, msg)
	panic(msg)
}

// Panicf logs at FATAL level, then panics with the message.
func (l *RedirectLogger) Panicf(format string, v ...interface{}) {
	msg := fmt.Sprintf(format, v...)
	l.logLine(levelFatal, msg)
	panic(msg)
}

// Quiet reports whether the logger is at the NONE level, where all output
// is discarded.
func (l *RedirectLogger) Quiet() bool { return l.Lvl == levelNone }

// The write methods shadow the embedded Builder's so that NONE silences
// the harness's own output as well as the log lines: while quiet, writes
// go to a scratch builder that nobody reads.

func (l *RedirectLogger) sink() *strings.Builder {
	if l.Quiet() {
		return &strings.Builder{}
	}
	return l.Builder
}

// Write appends p unless the logger is quiet.
func (l *RedirectLogger) Write(p []byte) (int, error) { return l.sink().Write(p) }

// WriteByte appends c unless the logger is quiet.
func (l *RedirectLogger) WriteByte(c byte) error { return l.sink().WriteByte(c) }

// WriteRune appends r unless the logger is quiet.
func (l *RedirectLogger) WriteRune(r rune) (int, error) { return l.sink().WriteRune(r) }

// WriteString appends s unless the logger is quiet.
func (l *RedirectLogger) WriteString(s string) (int, error) { return l.sink().WriteString(s) }
