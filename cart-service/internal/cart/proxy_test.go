package cart_test

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// dbProxy is a TCP proxy between the service and the real MariaDB. It lets a test cause real
// database failures without stopping the server that other tests share:
//
//   - SetDown(true) drops every open connection and refuses new ones (an outage); SetDown(false)
//     ends it.
//   - DropReplyToNextCommit lets the next COMMIT reach the server, throws away the server's answer
//     and drops the connection: the client cannot tell whether its transaction committed (it did),
//     which is the ambiguous commit that mysqldb.ErrCommitUnknown stands for.
type dbProxy struct {
	target string
	ln     net.Listener

	mu             sync.Mutex
	down           bool
	dropNextCommit bool
	conns          map[net.Conn]struct{}
	commitsDropped atomic.Int32
}

func startProxy(t *testing.T, target string) *dbProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dbProxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.closeAll()
	})
	return p
}

func (p *dbProxy) Addr() string { return p.ln.Addr().String() }

func (p *dbProxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
	if down {
		p.closeAll()
	}
}

func (p *dbProxy) DropReplyToNextCommit() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropNextCommit = true
}

func (p *dbProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *dbProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *dbProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // listener closed at cleanup
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		if !p.track(client, server) {
			client.Close()
			server.Close()
			continue
		}
		go p.pipe(client, server)
	}
}

// pipe relays one connection in both directions. The client-to-server side watches for a
// COM_QUERY "COMMIT" packet (3-byte length, sequence byte, 0x03, the text); when the test asked
// for it, the server-to-client side then swallows the answer and drops the connection.
func (p *dbProxy) pipe(client, server net.Conn) {
	var swallow atomic.Bool
	done := func() { client.Close(); server.Close() }
	go func() {
		defer done()
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				chunk := buf[:n]
				if holdsCommit(chunk) {
					p.mu.Lock()
					if p.dropNextCommit {
						p.dropNextCommit = false
						swallow.Store(true) // before the server can possibly answer
					}
					p.mu.Unlock()
				}
				if _, werr := server.Write(chunk); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer done()
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if swallow.Load() {
				p.commitsDropped.Add(1)
				return // the server has committed and answered; the client never hears it
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// holdsCommit reports whether a chunk of the client's stream holds a COM_QUERY "COMMIT" packet.
// The driver writes packets that need no answer (COM_STMT_CLOSE) in front of the next command, so
// the chunk is walked packet by packet: 3-byte little-endian length, sequence byte, payload.
func holdsCommit(chunk []byte) bool {
	for len(chunk) >= 4 {
		n := int(chunk[0]) | int(chunk[1])<<8 | int(chunk[2])<<16
		if len(chunk) < 4+n {
			return false
		}
		if string(chunk[4:4+n]) == "\x03COMMIT" {
			return true
		}
		chunk = chunk[4+n:]
	}
	return false
}
