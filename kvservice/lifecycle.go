package kvservice

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// lifecycle is how a member (Server or ShardedServer) stops: asked to
// (Stop), or on its own with the reason in Err. Both embed it.
type lifecycle struct {
	stopc    chan struct{} // closed to ask the member to stop
	donec    chan struct{} // closed once it stopped
	stopOnce sync.Once
	errMu    sync.Mutex
	err      error // why it stopped, if not asked to
}

func newLifecycle() lifecycle {
	return lifecycle{stopc: make(chan struct{}), donec: make(chan struct{})}
}

// Done is closed when the member has stopped: after Stop, or on its own
// (see Err).
func (l *lifecycle) Done() <-chan struct{} { return l.donec }

// Err returns why the member stopped on its own: a storage failure,
// ErrRemoved (Server), ErrShardCount (ShardedServer). It is nil while
// running and after Stop.
func (l *lifecycle) Err() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.err
}

// Stop stops the member and waits until its data is closed. Requests in
// flight are answered with ErrStopped. Stopping twice is harmless.
func (l *lifecycle) Stop() {
	l.askStop()
	<-l.donec
}

func (l *lifecycle) askStop() { l.stopOnce.Do(func() { close(l.stopc) }) }

// setErr records err as the reason for stopping, if it is the first; it
// reports whether it was.
func (l *lifecycle) setErr(err error) bool {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	if l.err != nil {
		return false
	}
	l.err = err
	return true
}

// httpFront is a member's client API listener and server.
type httpFront struct {
	httpLn  net.Listener
	httpSrv *http.Server
}

// serveHTTP listens on cfg.HTTPAddr (with TLS if configured) and serves h.
func (f *httpFront) serveHTTP(cfg *Config, h http.Handler, lg *zap.Logger) error {
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	if cfg.HTTPTLS != nil {
		ln = tls.NewListener(ln, cfg.HTTPTLS)
	}
	f.httpLn = ln
	f.httpSrv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: zap.NewStdLog(lg.Named("http"))}
	go func() {
		if err := f.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			lg.Error("http server stopped", zap.Error(err))
		}
	}()
	return nil
}

// HTTPAddr returns the address the client API listens on.
func (f *httpFront) HTTPAddr() string { return f.httpLn.Addr().String() }

// stopHTTP lets requests in flight finish for a second, then closes.
func (f *httpFront) stopHTTP() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = f.httpSrv.Shutdown(ctx)
	cancel()
	_ = f.httpSrv.Close()
}
