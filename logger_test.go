package raft

import (
	"bytes"
	"log"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestDefaultLoggerFormat(t *testing.T) {
	var buf bytes.Buffer
	l := &DefaultLogger{Logger: log.New(&buf, "", 0)}
	l.Info("a", 1)
	l.Infof("b=%d", 2)
	l.Warning("c")
	l.Warningf("d%s", "!")
	l.Error("e")
	l.Errorf("f%d", 6)
	l.Debug("hidden")
	l.Debugf("hidden %d", 1)
	l.EnableDebug()
	l.Debug("g")
	l.Debugf("h%d", 8)
	require.Equal(t, "INFO: a1\nINFO: b=2\nWARN: c\nWARN: d!\nERROR: e\nERROR: f6\nDEBUG: g\nDEBUG: h8\n", buf.String())

	require.PanicsWithValue(t, "boom 3", func() { l.Panicf("boom %d", 3) })
	require.PanicsWithValue(t, "bang", func() { l.Panic("bang") })
	require.True(t, strings.HasSuffix(buf.String(), "boom 3\nbang\n"))
}

func TestDefaultLoggerFlags(t *testing.T) {
	var buf bytes.Buffer
	l := &DefaultLogger{Logger: log.New(&buf, "", log.Lshortfile)}
	l.Info("where")
	// The file:line is the caller's, not the logger's.
	require.True(t, strings.HasPrefix(buf.String(), "logger_test.go:"), buf.String())

	l.EnableTimestamps()
	require.Equal(t, log.Lshortfile|log.Ldate|log.Ltime, l.Flags())
}

func TestSetLogger(t *testing.T) {
	t.Cleanup(ResetDefaultLogger)
	require.Same(t, defaultLogger, packageLogger())

	var buf bytes.Buffer
	mine := &DefaultLogger{Logger: log.New(&buf, "", 0)}
	SetLogger(mine)
	require.Same(t, mine, packageLogger())
	SetLogger(discardLogger) // a value of the same type, then of another below
	require.Same(t, discardLogger, packageLogger())
	SetLogger(NewZapLogger(nil))
	ResetDefaultLogger()
	require.Same(t, defaultLogger, packageLogger())

	// Concurrent swaps and reads are safe (checked under -race).
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				SetLogger(mine)
				packageLogger().Debug("x")
			}
		}()
	}
	wg.Wait()
}

func TestZapLoggerLevels(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := NewZapLogger(zap.New(core, zap.AddCaller()))
	l.Debug("d", 1)
	l.Debugf("d%d", 2)
	l.Info("i")
	l.Infof("i%d", 2)
	l.Warning("w")
	l.Warningf("w%d", 2)
	l.Error("e")
	l.Errorf("e%d", 2)
	require.PanicsWithValue(t, "p2", func() { l.Panicf("p%d", 2) })

	type line struct {
		level zapcore.Level
		msg   string
	}
	var got []line
	for _, e := range logs.All() {
		got = append(got, line{e.Level, e.Message})
		require.True(t, strings.HasSuffix(e.Caller.File, "logger_test.go"), "caller %s", e.Caller.File)
	}
	require.Equal(t, []line{
		{zapcore.DebugLevel, "d1"}, {zapcore.DebugLevel, "d2"},
		{zapcore.InfoLevel, "i"}, {zapcore.InfoLevel, "i2"},
		{zapcore.WarnLevel, "w"}, {zapcore.WarnLevel, "w2"},
		{zapcore.ErrorLevel, "e"}, {zapcore.ErrorLevel, "e2"},
		{zapcore.PanicLevel, "p2"},
	}, got)
}

func TestZapLoggerKeepsFields(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l := NewZapLogger(zap.New(core).With(zap.Uint64("raft_id", 3)))
	l.Debug("filtered by the zap level")
	l.Infof("became leader at term %d", 5)
	require.Equal(t, 1, logs.Len())
	e := logs.All()[0]
	require.Equal(t, "became leader at term 5", e.Message)
	require.Equal(t, map[string]interface{}{"raft_id": uint64(3)}, e.ContextMap())
}

func TestNilZapLoggerStillPanics(t *testing.T) {
	l := NewZapLogger(nil)
	l.Info("dropped")
	require.Panics(t, func() { l.Panic("still") })
}

func TestDefaultZapOutput(t *testing.T) {
	var buf bytes.Buffer
	l := NewZapLogger(newDefaultZap(&buf))
	l.Debugf("not at the default level")
	l.Infof("entry at index %d missing", 7)
	l.Warning("careful")
	out := buf.String()
	require.NotContains(t, out, "not at the default level")
	require.Contains(t, out, "INFO\traft\t")
	require.Contains(t, out, "entry at index 7 missing")
	require.Contains(t, out, "WARN\traft\t")
	require.Contains(t, out, "logger_test.go:", "lines carry the caller's position")
	require.Equal(t, 2, strings.Count(out, "\n"))
}
