package wireside

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// Serve answers requests read from r, one JSON value each, with responses
// written to w in the same order, until r ends.
func Serve(side Side, r io.Reader, w io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for {
		var req Request
		if err := dec.Decode(&req); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if err := enc.Encode(Handle(side, req)); err != nil {
			return err
		}
		// The client waits for each answer before it sends more.
		if err := bw.Flush(); err != nil {
			return err
		}
	}
}

// Remote is a Side's Handle running in another process.
type Remote struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	enc *json.Encoder
	dec *json.Decoder
}

// Start runs the program at path, which must call Serve on its standard
// input and output.
func Start(path string) (*Remote, error) {
	cmd := exec.Command(path)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &Remote{cmd: cmd, in: in, enc: json.NewEncoder(in), dec: json.NewDecoder(bufio.NewReader(out))}, nil
}

// Call sends one request and waits for its response.
func (r *Remote) Call(req Request) (Response, error) {
	if err := r.enc.Encode(req); err != nil {
		return Response{}, fmt.Errorf("sending to peer: %w", err)
	}
	var resp Response
	if err := r.dec.Decode(&resp); err != nil {
		return Response{}, fmt.Errorf("reading from peer: %w", err)
	}
	return resp, nil
}

// Close ends the peer's input and waits for it to exit.
func (r *Remote) Close() error {
	r.in.Close()
	return r.cmd.Wait()
}
