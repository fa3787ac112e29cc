package rafttest

import (
	"strings"
	"testing"
)

func TestRedirectLoggerLevels(t *testing.T) {
	l := &RedirectLogger{Builder: &strings.Builder{}, Lvl: levelInfo}
	l.Debugf("hidden %d", 1)
	l.Infof("shown %d", 2)
	l.Warning("a", "b")
	l.Errorf("ends in newline\n")
	want := "INFO shown 2\nWARN ab\nERROR ends in newline\n"
	if got := l.String(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestRedirectLoggerQuietSilencesWrites(t *testing.T) {
	l := &RedirectLogger{Builder: &strings.Builder{}, Lvl: levelNone}
	if !l.Quiet() {
		t.Fatal("NONE must be quiet")
	}
	l.WriteString("x")
	l.WriteByte('y')
	l.WriteRune('z')
	l.Write([]byte("w"))
	l.Errorf("error")
	if l.Len() != 0 {
		t.Fatalf("quiet logger wrote %q", l.String())
	}
}

func TestRedirectLoggerPanics(t *testing.T) {
	l := &RedirectLogger{Builder: &strings.Builder{}}
	defer func() {
		if r := recover(); r != "boom 7" {
			t.Fatalf("recovered %v, want the message", r)
		}
		if got := l.String(); got != "FATAL boom 7\n" {
			t.Fatalf("logged %q", got)
		}
	}()
	l.Panicf("boom %d", 7)
}

func TestLogLevelNames(t *testing.T) {
	env := NewInteractionEnv(nil)
	if err := env.LogLevel("warn"); err != nil || env.Output.Lvl != levelWarn {
		t.Fatalf("warn: err=%v lvl=%d", err, env.Output.Lvl)
	}
	err := env.LogLevel("verbose")
	if err == nil || err.Error() != "log levels must be either of [DEBUG INFO WARN ERROR FATAL NONE]" {
		t.Fatalf("unexpected error %v", err)
	}
}

func TestNestedIndentsEveryLine(t *testing.T) {
	env := NewInteractionEnv(nil)
	env.Output.WriteString("top\n")
	env.nested(func() {
		env.Output.WriteString("a\n\nb")
		env.Output.Infof("logged")
	})
	// The log line continues "b", which had no newline: indentation is
	// per line of the nested output as a whole.
	want := "top\n  a\n  \n  bINFO logged\n"
	if got := env.Output.String(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
