package raft

import (
	"fmt"
	"io"
	"log"
	"os"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Logger is the logging interface raft writes through. Applications pass
// their own in Config.Logger or install a package-wide one with SetLogger.
//
// Fatal and Fatalf must not return (the process is expected to exit); Panic
// and Panicf must panic after logging.
type Logger interface {
	Debug(v ...interface{})
	Debugf(format string, v ...interface{})
	Info(v ...interface{})
	Infof(format string, v ...interface{})
	Warning(v ...interface{})
	Warningf(format string, v ...interface{})
	Error(v ...interface{})
	Errorf(format string, v ...interface{})
	Fatal(v ...interface{})
	Fatalf(format string, v ...interface{})
	Panic(v ...interface{})
	Panicf(format string, v ...interface{})
}

// loggerHolder exists because atomic.Value refuses values of differing
// concrete types, and the installed Logger's type changes with SetLogger.
type loggerHolder struct{ Logger }

var (
	// defaultLogger is what raft logs through until SetLogger is called: a
	// zap logger writing human-readable lines to stderr at Info level.
	defaultLogger = NewZapLogger(newDefaultZap(os.Stderr))

	currentLogger atomic.Pointer[loggerHolder]
)

func init() { currentLogger.Store(&loggerHolder{defaultLogger}) }

// SetLogger installs l as the package-wide logger, used by every raft
// instance whose Config.Logger is nil and by MemoryStorage. It is safe to call
// concurrently with logging.
func SetLogger(l Logger) {
	currentLogger.Store(&loggerHolder{l})
}

// ResetDefaultLogger reinstalls the logger raft starts with.
func ResetDefaultLogger() {
	SetLogger(defaultLogger)
}

// packageLogger returns the package-wide logger.
func packageLogger() Logger {
	return currentLogger.Load().Logger
}

// newDefaultZap builds the zap logger behind defaultLogger: console-encoded,
// Info level (like etcd's default, which hides Debug), named "raft".
func newDefaultZap(w io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeLevel = zapcore.CapitalLevelEncoder // INFO, WARN: the level words DefaultLogger prints
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), zapcore.InfoLevel)
	return zap.New(core, zap.AddCaller()).Named("raft")
}

// NewZapLogger adapts a zap logger to the Logger interface. It is the
// recommended logger: attach fields once (for example
// NewZapLogger(z.With(zap.Uint64("raft_id", id)))) and every line raft writes
// for that node carries them. Which levels are written is z's decision; Fatal
// exits and Panic panics the way zap does. A nil z yields a logger that
// writes nothing (Panic still panics, Fatal still exits).
func NewZapLogger(z *zap.Logger) Logger {
	if z == nil {
		z = zap.NewNop()
	}
	// Skip the adapter's own frame so that zap reports raft's call site.
	return &zapLogger{s: z.WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

// zapLogger maps Logger's methods onto a zap.SugaredLogger.
type zapLogger struct {
	s *zap.SugaredLogger
}

func (z *zapLogger) Debug(v ...interface{})                   { z.s.Debug(v...) }
func (z *zapLogger) Debugf(format string, v ...interface{})   { z.s.Debugf(format, v...) }
func (z *zapLogger) Error(v ...interface{})                   { z.s.Error(v...) }
func (z *zapLogger) Errorf(format string, v ...interface{})   { z.s.Errorf(format, v...) }
func (z *zapLogger) Info(v ...interface{})                    { z.s.Info(v...) }
func (z *zapLogger) Infof(format string, v ...interface{})    { z.s.Infof(format, v...) }
func (z *zapLogger) Warning(v ...interface{})                 { z.s.Warn(v...) }
func (z *zapLogger) Warningf(format string, v ...interface{}) { z.s.Warnf(format, v...) }
func (z *zapLogger) Fatal(v ...interface{})                   { z.s.Fatal(v...) }
func (z *zapLogger) Fatalf(format string, v ...interface{})   { z.s.Fatalf(format, v...) }
func (z *zapLogger) Panic(v ...interface{})                   { z.s.Panic(v...) }
func (z *zapLogger) Panicf(format string, v ...interface{})   { z.s.Panicf(format, v...) }

// DefaultLogger is the standard-library Logger: each line is written through
// the embedded *log.Logger as "LEVEL: message". Debug lines are dropped until
// EnableDebug is called. It is kept for applications that construct it
// directly; NewZapLogger is the recommended logger.
type DefaultLogger struct {
	*log.Logger
	debug bool
}

// outputDepth makes log.Logger's file:line flags point at the caller of a
// DefaultLogger method rather than at write.
const outputDepth = 3

// write emits one line tagged with level.
func (l *DefaultLogger) write(level, msg string) {
	_ = l.Output(outputDepth, level+": "+msg)
}

// EnableTimestamps adds the date and time to every line.
func (l *DefaultLogger) EnableTimestamps() {
	l.SetFlags(l.Flags() | log.Ldate | log.Ltime)
}

// EnableDebug makes Debug and Debugf write their lines.
func (l *DefaultLogger) EnableDebug() {
	l.debug = true
}

// Debug writes a DEBUG line if debugging is enabled.
func (l *DefaultLogger) Debug(v ...interface{}) {
	if l.debug {
		l.write("DEBUG", fmt.Sprint(v...))
	}
}

// Debugf writes a formatted DEBUG line if debugging is enabled.
func (l *DefaultLogger) Debugf(format string, v ...interface{}) {
	if l.debug {
		l.write("DEBUG", fmt.Sprintf(format, v...))
	}
}

// Info writes an INFO line.
func (l *DefaultLogger) Info(v ...interface{}) { l.write("INFO", fmt.Sprint(v...)) }

// Infof writes a formatted INFO line.
func (l *DefaultLogger) Infof(format string, v ...interface{}) {
	l.write("INFO", fmt.Sprintf(format, v...))
}

// Error writes an ERROR line.
func (l *DefaultLogger) Error(v ...interface{}) { l.write("ERROR", fmt.Sprint(v...)) }

// Errorf writes a formatted ERROR line.
func (l *DefaultLogger) Errorf(format string, v ...interface{}) {
	l.write("ERROR", fmt.Sprintf(format, v...))
}

// Warning writes a WARN line.
func (l *DefaultLogger) Warning(v ...interface{}) { l.write("WARN", fmt.Sprint(v...)) }

// Warningf writes a formatted WARN line.
func (l *DefaultLogger) Warningf(format string, v ...interface{}) {
	l.write("WARN", fmt.Sprintf(format, v...))
}

// Fatal writes a FATAL line and exits the process with status 1, as the
// Logger contract requires.
func (l *DefaultLogger) Fatal(v ...interface{}) {
	l.write("FATAL", fmt.Sprint(v...))
	os.Exit(1)
}

// Fatalf writes a formatted FATAL line and exits the process with status 1.
func (l *DefaultLogger) Fatalf(format string, v ...interface{}) {
	l.write("FATAL", fmt.Sprintf(format, v...))
	os.Exit(1)
}

// Panic writes the message (without a level tag) and panics with it.
func (l *DefaultLogger) Panic(v ...interface{}) {
	l.Logger.Panic(v...)
}

// Panicf writes the formatted message (without a level tag) and panics with
// it.
func (l *DefaultLogger) Panicf(format string, v ...interface{}) {
	l.Logger.Panicf(format, v...)
}
